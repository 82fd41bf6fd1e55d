<?php
/**
 * What WHMCS's Setup > Addon Modules page does with an addon module, for the sandbox and the
 * tests. WHMCS documents what it calls (developers.whmcs.com, addon-modules/: MODULE_activate()
 * and MODULE_deactivate() answering status success, info or error; MODULE_output($vars) with
 * the module's fields and values, 'modulelink' and, in WHMCS's sample module, 'version' and
 * '_lang'; hooks.php loaded on every page) but not where it keeps the rest. What this
 * stand-in does there is ONE plausible way, marked [UNCONFIRMED]; vipgate's code does not
 * depend on it, and tests/test_php_addon.py also runs the alternatives where it could:
 *
 *   php addon.php WHMCS_DIR MODULE activate
 *       calls MODULE_activate(); unless it answers status 'error': [UNCONFIRMED] MODULE joins
 *       the comma-separated tblconfiguration ActiveAddonModules, tbladdonmodules gains the row
 *       (MODULE, 'version', the config's version), and AddonModulesHooks (a tblconfiguration
 *       key of WHMCS 8.4's empty install; here the active modules that have a hooks.php, the
 *       ones fire.php loads) is rebuilt
 *   php addon.php WHMCS_DIR MODULE configure FIELDS_JSON
 *       Configure > Save Changes: each field of MODULE_config() is stored as a tbladdonmodules
 *       row (WHMCS 8.4's columns id, module, setting, value). [UNCONFIRMED] trimmed; a yesno
 *       'on' or ''; a field not posted takes its Default; a password field as typed, or
 *       encrypted (vipgate_test_encrypt) with VIPGATE_SANDBOX_ENCRYPT_PASSWORDS set; the
 *       'access' row holds the admin role ids allowed the module's page (FIELDS_JSON's
 *       "__access__" list, default [1])
 *   php addon.php WHMCS_DIR MODULE deactivate
 *       calls MODULE_deactivate(); unless it answers status 'error': [UNCONFIRMED] every
 *       tbladdonmodules row of MODULE is deleted and MODULE leaves ActiveAddonModules and
 *       AddonModulesHooks
 *   php addon.php WHMCS_DIR MODULE output [VARS_JSON]
 *       Addons > MODULE (active modules only): MODULE_output($vars) with the module's stored
 *       settings, 'modulelink' and '_lang': as WHMCS documents (addon-modules/multi-language),
 *       the $_ADDONLANG of the module's lang/LANGUAGE.php for the admin's language (VARS_JSON's
 *       "__admin_language__", default english), else of the language its config names, else
 *       empty. VARS_JSON's other keys replace or add to them (a test's way to hand the module
 *       values other than the stored ones); what it echoes is captured
 *
 * Every action runs as the admin WHMCS's session names ($_SESSION['adminid'] = 1), whose
 * tbladmins.language is FIELDS_JSON's "__admin_language__" (default english; the row, and the
 * table in a test's bare database, are made): WHMCS passes that language to the output
 * function only (as '_lang'); vipgate's other functions read it from tbladmins.
 *
 * Prints one JSON object: {"response": ..., "output": ...}. The database is the one of
 * bootstrap.php (VIPGATE_SANDBOX_PDO_DSN); tblconfiguration and tbladdonmodules are made when a
 * test's bare database has none (ModuleDebugMode then from VIPGATE_SANDBOX_MODULE_DEBUG).
 */

require __DIR__ . '/bootstrap.php';

if ($argc < 4) {
    fwrite(STDERR, "usage: php addon.php WHMCS_DIR MODULE activate|configure|deactivate|output [FIELDS_JSON]\n");
    exit(2);
}
list(, $root, $module, $action) = $argv;
$posted = $argc > 4 ? json_decode($argv[4], true) : [];
if (!is_array($posted)) {
    fwrite(STDERR, "FIELDS_JSON must be a JSON object\n");
    exit(2);
}
$file = rtrim($root, '/') . '/modules/addons/' . $module . '/' . $module . '.php';
if (!is_file($file)) {
    fwrite(STDERR, "no addon module at $file\n");
    exit(2);
}

$pdo = WHMCS\Database\Capsule::connection()->getPdo();
vipgate_test_addon_tables($pdo);
$language = isset($posted['__admin_language__']) ? (string) $posted['__admin_language__'] : 'english';
unset($posted['__admin_language__']);
vipgate_test_admin($pdo, 1, $language);
$_SESSION = ['adminid' => 1];
require_once $file;
$config = call_user_func($module . '_config');
$active = vipgate_test_list($pdo, 'ActiveAddonModules');
$result = ['response' => null, 'output' => null];

if ($action === 'activate') {
    $response = function_exists($module . '_activate') ? call_user_func($module . '_activate') : null;
    $result['response'] = $response;
    if (vipgate_test_accepted($response) && !in_array($module, $active, true)) {
        $active[] = $module;
        sort($active);
        vipgate_test_set($pdo, 'ActiveAddonModules', implode(',', $active));
        if (isset($config['version'])) {
            $pdo->prepare('INSERT INTO tbladdonmodules (module, setting, value) VALUES (?, ?, ?)')
                ->execute([$module, 'version', (string) $config['version']]);
        }
    }
    // The page WHMCS redirects to after activating lists the active modules' hooks files.
    $hooks = [];
    foreach ($active as $name) {
        if (is_file(rtrim($root, '/') . '/modules/addons/' . $name . '/hooks.php')) {
            $hooks[] = $name;
        }
    }
    sort($hooks);
    vipgate_test_set($pdo, 'AddonModulesHooks', implode(',', $hooks));
} elseif ($action === 'configure') {
    if (!in_array($module, $active, true)) {
        fwrite(STDERR, "$module is not active: WHMCS shows no Configure for it\n");
        exit(2);
    }
    $existing = vipgate_test_module_settings($pdo, $module);
    foreach ($config['fields'] as $key => $field) {
        $value = '';
        if (isset($posted[$key]) && is_string($posted[$key])) {
            $value = trim($posted[$key]);
        } elseif ($field['Type'] !== 'yesno' && isset($field['Default'])) {
            $value = (string) $field['Default'];
        }
        if ($field['Type'] === 'yesno') {
            $value = $value !== '' && $value !== 'off' && $value !== 'disabled' ? 'on' : '';
        } elseif ($field['Type'] === 'password' && $value !== '' && getenv('VIPGATE_SANDBOX_ENCRYPT_PASSWORDS')) {
            $value = vipgate_test_encrypt($value);
        }
        if (array_key_exists($key, $existing)) {
            $pdo->prepare('UPDATE tbladdonmodules SET value = ? WHERE module = ? AND setting = ?')
                ->execute([$value, $module, $key]);
        } else {
            $pdo->prepare('INSERT INTO tbladdonmodules (module, setting, value) VALUES (?, ?, ?)')
                ->execute([$module, $key, $value]);
        }
    }
    $access = isset($posted['__access__']) && is_array($posted['__access__']) ? $posted['__access__'] : [1];
    $pdo->prepare('DELETE FROM tbladdonmodules WHERE module = ? AND setting = ?')->execute([$module, 'access']);
    $pdo->prepare('INSERT INTO tbladdonmodules (module, setting, value) VALUES (?, ?, ?)')
        ->execute([$module, 'access', implode(',', array_map('intval', $access))]);
} elseif ($action === 'deactivate') {
    $response = function_exists($module . '_deactivate') ? call_user_func($module . '_deactivate') : null;
    $result['response'] = $response;
    if (vipgate_test_accepted($response)) {
        $pdo->prepare('DELETE FROM tbladdonmodules WHERE module = ?')->execute([$module]);
        foreach (['ActiveAddonModules', 'AddonModulesHooks'] as $setting) {
            $list = array_values(array_diff(vipgate_test_list($pdo, $setting), [$module]));
            vipgate_test_set($pdo, $setting, implode(',', $list));
        }
    }
} elseif ($action === 'output') {
    if (!in_array($module, $active, true) || !function_exists($module . '_output')) {
        fwrite(STDERR, "$module is not active or has no admin page\n");
        exit(2);
    }
    $vars = vipgate_test_module_settings($pdo, $module);
    $vars['modulelink'] = 'addonmodules.php?module=' . $module;
    $vars['_lang'] = vipgate_test_addon_lang($root, $module, [$language,
        isset($config['language']) ? (string) $config['language'] : '']);
    foreach ($posted as $key => $value) {
        $vars[$key] = $value;
    }
    ob_start();
    call_user_func($module . '_output', $vars);
    $result['output'] = ob_get_clean();
} else {
    fwrite(STDERR, "unknown action $action\n");
    exit(2);
}
echo json_encode($result, JSON_UNESCAPED_SLASHES), "\n";

/** WHMCS goes on with an (de)activation unless the module answered status 'error'. */
function vipgate_test_accepted($response)
{
    return !$response || (is_array($response) && isset($response['status'])
        && in_array($response['status'], ['success', 'info'], true));
}

/** The module's tbladdonmodules rows, setting => value. */
function vipgate_test_module_settings($pdo, $module)
{
    $statement = $pdo->prepare('SELECT setting, value FROM tbladdonmodules WHERE module = ?');
    $statement->execute([$module]);
    $settings = [];
    foreach ($statement->fetchAll(\PDO::FETCH_NUM) as $row) {
        $settings[$row[0]] = $row[1];
    }
    return $settings;
}

/** A comma-separated tblconfiguration list. */
function vipgate_test_list($pdo, $setting)
{
    $statement = $pdo->prepare('SELECT value FROM tblconfiguration WHERE setting = ?');
    $statement->execute([$setting]);
    $value = $statement->fetchColumn();
    return array_values(array_filter(explode(',', (string) $value), 'strlen'));
}

function vipgate_test_set($pdo, $setting, $value)
{
    $pdo->prepare('DELETE FROM tblconfiguration WHERE setting = ?')->execute([$setting]);
    $pdo->prepare('INSERT INTO tblconfiguration (setting, value, created_at, updated_at) VALUES (?, ?, ?, ?)')
        ->execute([$setting, $value, date('Y-m-d H:i:s'), date('Y-m-d H:i:s')]);
}

/** WHMCS 8.4's tblconfiguration and tbladdonmodules, for a test's bare database. */
function vipgate_test_addon_tables($pdo)
{
    $increment = $pdo->getAttribute(\PDO::ATTR_DRIVER_NAME) === 'mysql' ? 'AUTO_INCREMENT' : 'AUTOINCREMENT';
    $made = false;
    try {
        $pdo->query('SELECT setting FROM tblconfiguration WHERE 1 = 0');
    } catch (\PDOException $e) {
        $pdo->exec('CREATE TABLE tblconfiguration (id INTEGER PRIMARY KEY ' . $increment . ','
            . ' setting VARCHAR(64) NOT NULL UNIQUE, value TEXT NOT NULL,'
            . ' created_at DATETIME NULL, updated_at DATETIME NULL)');
        $made = true;
    }
    if ($made) {
        vipgate_test_set($pdo, 'ModuleDebugMode', (string) getenv('VIPGATE_SANDBOX_MODULE_DEBUG'));
    }
    $pdo->exec('CREATE TABLE IF NOT EXISTS tbladdonmodules (id INTEGER PRIMARY KEY ' . $increment . ','
        . ' module TEXT NOT NULL, setting TEXT NOT NULL, value TEXT NOT NULL)');
}

/** The admin $id has WHMCS language $language in tbladmins (the row, or the table in a test's bare database, made). */
function vipgate_test_admin($pdo, $id, $language)
{
    $increment = $pdo->getAttribute(\PDO::ATTR_DRIVER_NAME) === 'mysql' ? 'AUTO_INCREMENT' : 'AUTOINCREMENT';
    $pdo->exec('CREATE TABLE IF NOT EXISTS tbladmins (id INTEGER PRIMARY KEY ' . $increment . ','
        . ' username VARCHAR(255) NOT NULL, language VARCHAR(64) NOT NULL, disabled INT NOT NULL DEFAULT 0)');
    $exists = $pdo->prepare('SELECT COUNT(*) FROM tbladmins WHERE id = ?');
    $exists->execute([$id]);
    if ((int) $exists->fetchColumn() > 0) {
        $pdo->prepare('UPDATE tbladmins SET language = ? WHERE id = ?')->execute([$language, $id]);
    } else {
        $pdo->prepare('INSERT INTO tbladmins (id, username, language, disabled) VALUES (?, ?, ?, 0)')
            ->execute([$id, 'admin', $language]);
    }
}

/** The $_ADDONLANG of the module's lang/NAME.php, for the first of $names that has one. */
function vipgate_test_addon_lang($root, $module, $names)
{
    foreach ($names as $name) {
        $file = rtrim($root, '/') . '/modules/addons/' . $module . '/lang/' . $name . '.php';
        if (preg_match('/^[a-z][a-z-]*$/', $name) && is_file($file)) {
            $_ADDONLANG = [];
            include $file;
            return $_ADDONLANG;
        }
    }
    return [];
}
