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
    /** The module's description and its settings form, in WHMCS's addon format. */
    function vipgate_config()
    {
        $defaults = vipgate_defaults();
        $milliseconds = function ($label, $key, $help) use ($defaults) {
            return ['FriendlyName' => $label, 'Type' => 'text', 'Size' => '8',
                'Default' => (string) $defaults[$key], 'Description' => $help];
        };
        return [
            'name' => 'vipgate',
            'description' => 'Keeps the VIP client group for paying clients and gates support tickets'
                . ' by invoice status: forwards WHMCS\'s hooks to the vipgate bridge.',
            'version' => vipgate_version(),
            'author' => 'vipgate',
            'language' => 'english',
            'fields' => [
                'bridge_url' => ['FriendlyName' => 'Bridge URL', 'Type' => 'text', 'Size' => '60',
                    'Description' => 'vipgate as WHMCS reaches it ([bridge] public_url), e.g.'
                        . ' https://vipgate.example.com'],
                'secret' => ['FriendlyName' => 'Webhook secret', 'Type' => 'password', 'Size' => '60',
                    'Description' => 'whsec_..., printed by vipgate install-stub --addon'],
                'fail_open' => ['FriendlyName' => 'Allow tickets without an answer', 'Type' => 'yesno',
                    'Default' => 'on', 'Description' => 'When vipgate does not answer in time, the'
                        . ' ticket is allowed (unticked: refused with a short message)'],
                'connect_timeout_ms' => $milliseconds('Connect timeout (ms)', 'connect_timeout_ms',
                    'at most 1000'),
                'timeout_ms' => $milliseconds('Timeout (ms)', 'timeout_ms',
                    'each delivery to the bridge, at most 2000'),
                'validation_timeout_ms' => $milliseconds('Ticket check timeout (ms)',
                    'validation_timeout_ms', 'TicketOpenValidation, at most 1500'),
                'panel_timeout_ms' => $milliseconds('Panel timeout (ms)', 'panel_timeout_ms',
                    'vipgate\'s panels on WHMCS\'s pages, at most 1000'),
                'precron_timeout_ms' => $milliseconds('Cron wait (ms)', 'precron_timeout_ms',
                    'how long PreCronJob waits for the reconcile, at least 1000'),
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
     * The words of the module's page: the admin's language file WHMCS passes in $vars['_lang']
     * (lang/*.php beside this file), each word it lacks from lang/english.php. Activate and
     * Deactivate get no $vars: their words are English.
     */
    function vipgate_texts($vars = [])
    {
        $given = is_array($vars) && isset($vars['_lang']) && is_array($vars['_lang']) ? $vars['_lang'] : [];
        $_ADDONLANG = [];
        if (is_file(__DIR__ . '/lang/english.php')) {
            include __DIR__ . '/lang/english.php';
        }
        return $given + $_ADDONLANG;
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
        try {
            $pdo = vipgate_pdo();
            vipgate_spool_ensure($pdo);
            vipgate_state_create($pdo);
            vipgate_addon_mark_active($pdo, true);
            $figures = vipgate_outbox_figures($pdo);
        } catch (\Throwable $e) {
            return ['status' => 'error', 'description' => 'vipgate could not create its tables'
                . ' (mod_vipgate_spool, mod_vipgate_state) in WHMCS\'s database: ' . $e->getMessage()];
        }
        $words = ['vipgate is active. Now open Configure, enter the Bridge URL and the Webhook secret'
            . ' (vipgate install-stub --addon printed both), tick the admin roles that may open its'
            . ' page and Save Changes.'];
        if ($figures['waiting'] > 0) {
            $words[] = $figures['waiting'] . ' event(s) kept from before wait in mod_vipgate_spool: they'
                . ' are sent once the settings are saved.';
        }
        $advice = vipgate_other_install_advice();
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
        $waiting = '';
        try {
            $pdo = vipgate_pdo();
            vipgate_addon_mark_active($pdo, false);
            $figures = vipgate_outbox_figures($pdo);
            $waiting = ' (' . $figures['waiting'] . ' event(s) waiting, ' . $figures['rejected'] . ' rejected)';
        } catch (\Throwable $e) {
            return ['status' => 'error', 'description' => 'vipgate could not record its deactivation in'
                . ' WHMCS\'s database (mod_vipgate_state), so its hooks would go on: ' . $e->getMessage()];
        }
        return ['status' => 'success', 'description' => 'vipgate is deactivated: its hooks no longer'
            . ' forward anything. Its data stays in WHMCS\'s database: mod_vipgate_spool' . $waiting
            . ' and mod_vipgate_state; activating the module again sends what waits (check the settings'
            . ' in Configure then). To remove the data for good: DROP TABLE mod_vipgate_spool,'
            . ' mod_vipgate_state.'];
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
            $rows[] = vipgate_output_row($t('settings'), $addon['problem'] !== '' ? $addon['problem']
                : $t('settings_not_entered'));
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
