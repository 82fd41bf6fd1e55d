<?php
/**
 * vipgate's hooks, as the addon module registers them: WHMCS loads a module's hooks.php on every
 * page (developers.whmcs.com: addon-modules/hooks); they forward only while the module is
 * active (vipgate_activate() ran, vipgate_deactivate() has not since). The settings are the
 * module's (tbladdonmodules). Installed as modules/addons/vipgate/hooks.php by
 * `vipgate install-stub --addon`.
 */

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

if (!function_exists('vipgate_register_hooks')) {
    if (function_exists('vipgate_version')) {
        return; // an includes/hooks/vipgate.php from before the addon forwards the hooks itself
    }
    if (!is_file(__DIR__ . '/vipgate_stub.php')) {
        // requiring a missing file would stop every WHMCS page
        error_log('vipgate: ' . __DIR__ . '/vipgate_stub.php is missing: no hook is forwarded;'
            . ' run vipgate install-stub --addon again');
        return;
    }
    require_once __DIR__ . '/vipgate_stub.php';
}
vipgate_register_hooks('addon');
