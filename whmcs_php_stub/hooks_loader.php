<?php
/**
 * vipgate's hook file for includes/hooks/ (the alternative to the addon module): WHMCS loads
 * every includes/hooks/*.php on every page. Installed as includes/hooks/vipgate.php by
 * `vipgate install-stub`, beside _vipgate_stub.php (the stub) and _vipgate_config.php (its
 * settings), which WHMCS does not load itself (their names start with an underscore).
 */

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

if (!function_exists('vipgate_register_hooks')) { // not loaded by the addon module already
    if (!is_file(__DIR__ . '/_vipgate_stub.php')) {
        // requiring a missing file would stop every WHMCS page
        error_log('vipgate: ' . __DIR__ . '/_vipgate_stub.php is missing: no hook is forwarded;'
            . ' run vipgate install-stub again');
        return;
    }
    require_once __DIR__ . '/_vipgate_stub.php';
}
vipgate_register_hooks('includes/hooks', __DIR__ . '/_vipgate_config.php');
