<?php
/**
 * Fire one WHMCS hook through the vipgate stub, as WHMCS would.
 *
 * Usage: php fire.php HOOK_DIR HOOK_NAME VARS_JSON [REPEAT]
 *
 * Loads bootstrap.php and, as WHMCS does, every HOOK_DIR/*.php whose name does not start with
 * an underscore (vipgate.php, not _vipgate_stub.php or its settings file _vipgate_config.php),
 * then the hooks.php of the active addon modules (tblconfiguration AddonModulesHooks, in the
 * WHMCS folder two levels above HOOK_DIR), runs the functions registered for HOOK_NAME
 * with the decoded vars REPEAT times (default 1) and prints one JSON object:
 *   {"returns": [...truthy results of the last run...], "calls_ms": [...], "elapsed_ms": total}
 * where calls_ms times each run of the hook inside php (php start-up excluded).
 * In VARS_JSON a value {"__object__": {...}} becomes a PHP object (WHMCS passes some), and a
 * top-level "__session__" object becomes $_SESSION (a logged-in client's session: uid,
 * Language) instead of a hook variable, a top-level "__post__" object becomes $_POST (a form
 * posted to the page; $_SERVER['REQUEST_METHOD'] is then POST, else GET), and a top-level
 * "__admin__" string is the admin WHMCS's CurrentUser reports for the request.
 */

require __DIR__ . '/bootstrap.php';

if ($argc < 4) {
    fwrite(STDERR, "usage: php fire.php HOOK_DIR HOOK_NAME VARS_JSON [REPEAT]\n");
    exit(2);
}
list(, $hookDir, $hookName, $varsJson) = $argv;
$repeat = $argc > 4 ? max(1, (int) $argv[4]) : 1;

function vipgate_test_objects($value)
{
    if (!is_array($value)) {
        return $value;
    }
    if (count($value) === 1 && array_key_exists('__object__', $value)) {
        return (object) $value['__object__'];
    }
    return array_map('vipgate_test_objects', $value);
}

$vars = json_decode($varsJson, true);
if (!is_array($vars)) {
    fwrite(STDERR, "VARS_JSON must be a JSON object\n");
    exit(2);
}
$vars = vipgate_test_objects($vars);
$_SESSION = [];
if (isset($vars['__session__']) && is_array($vars['__session__'])) {
    $_SESSION = $vars['__session__'];
}
unset($vars['__session__']);
$_POST = [];
$_SERVER['REQUEST_METHOD'] = 'GET';
if (isset($vars['__post__']) && is_array($vars['__post__'])) {
    $_POST = $vars['__post__'];
    $_SERVER['REQUEST_METHOD'] = 'POST';
}
unset($vars['__post__']);
$GLOBALS['vipgate_test_admin'] = isset($vars['__admin__']) ? (string) $vars['__admin__'] : '';
unset($vars['__admin__']);

$hookFiles = glob(rtrim($hookDir, '/') . '/*.php') ?: [];
sort($hookFiles);
foreach ($hookFiles as $hookFile) {
    if (substr(basename($hookFile), 0, 1) !== '_') { // WHMCS skips these
        require_once $hookFile;
    }
}

// Then the hooks.php of each addon module named in tblconfiguration's AddonModulesHooks: the
// active modules that have one (see addon.php). WHMCS documents that a module's hooks.php is
// loaded on every page; which list it loads them from is [UNCONFIRMED: not in WHMCS's docs].
$whmcsRoot = dirname(rtrim($hookDir, '/'), 2);
foreach (array_filter(explode(',', vipgate_test_setting('AddonModulesHooks')), 'strlen') as $addonModule) {
    $addonHooks = $whmcsRoot . '/modules/addons/' . $addonModule . '/hooks.php';
    if (is_file($addonHooks)) {
        require_once $addonHooks;
    }
}

// WHMCS has its database connection open before any hook runs: so does this stand-in, so that
// the first hook call is not timed with the connect.
try {
    WHMCS\Database\Capsule::connection()->getPdo();
} catch (\Throwable $e) {
    // a test's broken database: the stub finds out itself
}

$calls = [];
$returns = [];
for ($i = 0; $i < $repeat; $i++) {
    $started = microtime(true);
    $returns = vipgate_test_run_hook($hookName, $vars);
    $calls[] = round((microtime(true) - $started) * 1000, 3);
}
echo json_encode(['returns' => $returns, 'calls_ms' => $calls, 'elapsed_ms' => array_sum($calls)],
    JSON_UNESCAPED_SLASHES), "\n";
