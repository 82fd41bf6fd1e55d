<?php
/**
 * vipgate as a WHMCS addon module (Setup > Addon Modules), WHMCS's own way to install an
 * extension: the settings are entered in WHMCS's form (stored in tbladdonmodules), Activate
 * creates vipgate's tables in WHMCS's database, Deactivate stops the hooks and keeps the data,
 * and the module's page (Addons > vipgate) shows whether the bridge answers and what waits in
 * the outbox. The hooks are in hooks.php beside this file; both use the one stub,
 * vipgate_stub.php. Installed as modules/addons/vipgate/ by `vipgate install-stub --addon`.
 *
 * WHMCS calls vipgate_config(), vipgate_activate(), vipgate_deactivate() and vipgate_output()
 * by this folder's name. They are declared only when the stub here is the one loaded: an
 * includes/hooks/vipgate.php from before the addon declares a vipgate_config() of its own, and
 * declaring a function twice would stop WHMCS with a fatal error (`vipgate install-stub
 * --addon` replaces that old file).
 */

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

if (!function_exists('vipgate_register_hooks') && !function_exists('vipgate_version')
    && is_file(__DIR__ . '/vipgate_stub.php')) {
    require_once __DIR__ . '/vipgate_stub.php';
}

if (function_exists('vipgate_register_hooks') && !function_exists('vipgate_config')) {
    /**
     * The module's description and its settings form, in WHMCS's addon format. WHMCS passes
     * this function no language and shows its texts as they are: they are written in the
     * admin's language (vipgate_texts()), so that the form reads as the module's page does.
     */
    function vipgate_config()
    {
        $texts = vipgate_texts();
        $t = function ($key, ...$values) use ($texts) {
            return vipgate_text($texts, $key, ...$values);
        };
        $defaults = vipgate_defaults();
        $milliseconds = function ($key) use ($defaults, $t) {
            return ['FriendlyName' => $t('field_' . $key), 'Type' => 'text', 'Size' => '8',
                'Default' => (string) $defaults[$key], 'Description' => $t('field_' . $key . '_help')];
        };
        return [
            'name' => 'vipgate',
            'description' => $t('module_description'),
            'version' => vipgate_version(),
            'author' => 'vipgate',
            'language' => 'english',
            'fields' => [
                'bridge_url' => ['FriendlyName' => $t('field_bridge_url'), 'Type' => 'text', 'Size' => '60',
                    'Description' => $t('field_bridge_url_help')],
                'secret' => ['FriendlyName' => $t('field_secret'), 'Type' => 'password', 'Size' => '60',
                    'Description' => $t('field_secret_help')],
                'fail_open' => ['FriendlyName' => $t('field_fail_open'), 'Type' => 'yesno',
                    'Default' => 'on', 'Description' => $t('field_fail_open_help')],
                'connect_timeout_ms' => $milliseconds('connect_timeout_ms'),
                'timeout_ms' => $milliseconds('timeout_ms'),
                'validation_timeout_ms' => $milliseconds('validation_timeout_ms'),
                'panel_timeout_ms' => $milliseconds('panel_timeout_ms'),
                'precron_timeout_ms' => $milliseconds('precron_timeout_ms'),
            ],
        ];
    }

    /** The includes/hooks install's hook file, when there is one beside the addon. */
    function vipgate_other_install()
    {
        $path = dirname(__DIR__, 3) . '/includes/hooks/vipgate.php';
        return is_file($path) ? $path : '';
    }

    /**
     * The WHMCS language name of the admin behind this request (tbladmins.language, as WHMCS
     * 8's CurrentUser reports the admin, else of the session's adminid), '' when unknown.
     * WHMCS passes the module's words of the admin's language to vipgate_output() only
     * ($vars['_lang']); vipgate_config(), vipgate_activate() and vipgate_deactivate() get no
     * language, so they read it here.
     */
    function vipgate_admin_language()
    {
        $adminId = 0;
        try {
            if (class_exists('WHMCS\\Authentication\\CurrentUser')) {
                $current = new \WHMCS\Authentication\CurrentUser();
                $admin = $current->isAuthenticatedAdmin() ? $current->admin() : null;
                if ($admin !== null && isset($admin->language) && is_string($admin->language)
                    && trim($admin->language) !== '') {
                    return trim($admin->language);
                }
                $adminId = $admin !== null && isset($admin->id) ? vipgate_id($admin->id) : 0;
            }
        } catch (\Throwable $e) {
            // no admin known from there: the session's
        }
        if ($adminId <= 0 && isset($_SESSION['adminid'])) {
            $adminId = vipgate_id($_SESSION['adminid']);
        }
        if ($adminId <= 0) {
            return '';
        }
        try {
            $row = vipgate_sql(vipgate_pdo(), 'SELECT language FROM tbladmins WHERE id = ?', [$adminId])
                ->fetch(PDO::FETCH_NUM);
            return $row && is_string($row[0]) ? trim($row[0]) : '';
        } catch (\Throwable $e) {
            return '';
        }
    }

    /** The $_ADDONLANG of lang/NAME.php beside this file ([] when there is none). */
    function vipgate_lang_file($name)
    {
        $name = strtolower(trim((string) $name));
        $path = __DIR__ . '/lang/' . $name . '.php';
        if (!preg_match('/^[a-z][a-z-]*$/', $name) || !is_file($path)) {
            return [];
        }
        $_ADDONLANG = [];
        include $path;
        return is_array($_ADDONLANG) ? $_ADDONLANG : [];
    }

    /**
     * The module's words (lang/*.php beside this file): those WHMCS passes the module's page in
     * $vars['_lang'] (the admin's language file); elsewhere, the file of the admin's language
     * (vipgate_admin_language(); portuguese-pt reads portuguese-br's); each word they lack
     * from lang/english.php.
     */
    function vipgate_texts($vars = [])
    {
        if (is_array($vars) && isset($vars['_lang']) && is_array($vars['_lang'])) {
            $given = $vars['_lang'];
        } else {
            $language = strtolower(vipgate_admin_language());
            $given = vipgate_lang_file($language);
            if ($given === [] && strncmp($language, 'portuguese', 10) === 0) {
                $given = vipgate_lang_file('portuguese-br');
            }
        }
        return $given + vipgate_lang_file('english');
    }

    /** One word of $texts with its values put in (the key itself when no file has it). */
    function vipgate_text($texts, $key, ...$values)
    {
        $text = isset($texts[$key]) && is_string($texts[$key]) ? $texts[$key] : $key;
        return $values === [] ? $text : vsprintf($text, $values);
    }

    /** What to do about an includes/hooks install left beside the addon ('' when there is none). */
    function vipgate_other_install_advice($texts = null)
    {
        if (vipgate_other_install() === '') {
            return '';
        }
        return vipgate_text($texts === null ? vipgate_texts() : $texts, 'other_install');
    }

    /**
     * Setup > Addon Modules > Activate: creates vipgate's tables in WHMCS's database (an outbox
     * left by an includes/hooks install is kept, with its rows, and gains what it lacks).
     */
    function vipgate_activate()
    {
        $texts = vipgate_texts();
        try {
            $pdo = vipgate_pdo();
            vipgate_spool_ensure($pdo);
            vipgate_state_create($pdo);
            vipgate_addon_mark_active($pdo, true);
            $figures = vipgate_outbox_figures($pdo);
        } catch (\Throwable $e) {
            return ['status' => 'error', 'description' => vipgate_text($texts, 'activate_failed',
                $e->getMessage())];
        }
        $words = [vipgate_text($texts, 'activated')];
        if ($figures['waiting'] > 0) {
            $words[] = vipgate_text($texts, 'activated_waiting', $figures['waiting']);
        }
        $advice = vipgate_other_install_advice($texts);
        if ($advice !== '') {
            $words[] = $advice;
        }
        return ['status' => 'success', 'description' => implode(' ', $words)];
    }

    /**
     * Setup > Addon Modules > Deactivate: the hooks stop (vipgate's own record says so, whether
     * or not WHMCS still loads hooks.php or keeps the settings); vipgate's tables and rows stay.
     */
    function vipgate_deactivate()
    {
        $texts = vipgate_texts();
        try {
            $pdo = vipgate_pdo();
            vipgate_addon_mark_active($pdo, false);
            $figures = vipgate_outbox_figures($pdo);
        } catch (\Throwable $e) {
            return ['status' => 'error', 'description' => vipgate_text($texts, 'deactivate_failed',
                $e->getMessage())];
        }
        return ['status' => 'success', 'description' => vipgate_text($texts, 'deactivated',
            $figures['waiting'], $figures['rejected'])];
    }

    /** One row of the module page's table. */
    function vipgate_output_row($label, $value)
    {
        return '<tr><th style="text-align:left;padding-right:2em">' . htmlspecialchars($label, ENT_QUOTES)
            . '</th><td>' . htmlspecialchars($value, ENT_QUOTES) . '</td></tr>';
    }

    /**
     * Addons > vipgate: whether the bridge answers (a GET of its /healthz with the stub's
     * limits), the outbox's waiting and rejected events, the stub's and the bridge's versions
     * and a link to vipgate's own admin page. Echoed, as WHMCS wants. The settings are those
     * WHMCS passes in $vars (documented to hold the module's fields and their values).
     */
    function vipgate_output($vars)
    {
        $texts = vipgate_texts($vars);
        $t = function ($key, ...$values) use ($texts) {
            return vipgate_text($texts, $key, ...$values);
        };
        $addon = vipgate_addon_settings(is_array($vars) ? $vars : []);
        $config = $addon['config'];
        $rows = [vipgate_output_row($t('stub_version'), vipgate_version())];
        if ($config === null) {
            $problem = $addon['problem'] === '' ? $t('settings_not_entered') : (isset($addon['problem_key'])
                ? $t($addon['problem_key'], ...$addon['problem_values']) : $addon['problem']);
            $rows[] = vipgate_output_row($t('settings'), $problem);
        } else {
            $health = vipgate_bridge_health($config);
            $rows[] = vipgate_output_row($t('bridge'), vipgate_shown_url($config['url']));
            $rows[] = vipgate_output_row($t('bridge_answers'), $health['error'] === ''
                ? $t('answers_yes', $health['status']) : $t('answers_no', vipgate_short($health['error'])));
            $rows[] = vipgate_output_row($t('bridge_version'), $health['version'] !== '' ? $health['version']
                : $t('not_reported'));
            $until = vipgate_breaker_until();
            if (vipgate_breaker_is_open($until, time())) {
                $rows[] = vipgate_output_row($t('deliveries'), $t('paused_until', gmdate('H:i:s', $until)));
            }
        }
        try {
            $figures = vipgate_outbox_figures(vipgate_pdo());
            $rows[] = vipgate_output_row($t('events_waiting'), $figures['oldest'] === null
                ? (string) $figures['waiting'] : $t('oldest_from', $figures['waiting'], $figures['oldest']));
            $rows[] = vipgate_output_row($t('events_rejected'), $t('rejected_kept', $figures['rejected']));
        } catch (\Throwable $e) {
            $rows[] = vipgate_output_row($t('outbox'), $t('outbox_unreadable', vipgate_short($e->getMessage())));
        }
        $advice = vipgate_other_install_advice($texts);
        if ($advice !== '') {
            $rows[] = vipgate_output_row($t('also_installed'), $advice);
        }
        echo '<table class="form" id="vipgate-status">' . implode('', $rows) . '</table>';
        if ($config !== null) {
            $admin = preg_replace('#/hooks/whmcs/?$#', '', $config['url']) . '/admin/';
            echo '<p><a class="btn btn-default" target="_blank" rel="noopener" href="'
                . htmlspecialchars($admin, ENT_QUOTES) . '">' . htmlspecialchars($t('open_admin_page'), ENT_QUOTES)
                . '</a></p>';
        }
    }
}
