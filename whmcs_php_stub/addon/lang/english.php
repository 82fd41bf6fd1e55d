<?php
/**
 * vipgate's words in WHMCS's admin area in English: its page (Addons > vipgate), its settings
 * form and its Activate and Deactivate messages (Setup > Addon Modules). WHMCS passes the admin's
 * language file of this folder to vipgate_output() as $vars['_lang'], falling back to the one
 * vipgate_config() names ('english'); the other functions read the admin's language themselves
 * (vipgate_texts()); a word missing there is taken from this file. %s are the values, in order.
 */

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

$_ADDONLANG = [
    'stub_version' => 'Stub version',
    'settings' => 'Settings',
    'settings_not_entered' => 'not entered yet: Setup > Addon Modules > vipgate > Configure',
    'bridge' => 'Bridge',
    'bridge_answers' => 'Bridge answers',
    'answers_yes' => 'yes (HTTP %s)',
    'answers_no' => 'no: %s',
    'bridge_version' => 'Bridge version',
    'not_reported' => 'not reported',
    'deliveries' => 'Deliveries',
    'paused_until' => 'paused until %s UTC after one the bridge did not take',
    'events_waiting' => 'Events waiting',
    'oldest_from' => '%s, the oldest from %s UTC',
    'events_rejected' => 'Events rejected',
    'rejected_kept' => '%s (kept 30 days in mod_vipgate_spool; see vipgate check)',
    'outbox' => 'Outbox',
    'outbox_unreadable' => 'cannot be read: %s',
    'also_installed' => 'Also installed',
    'other_install' => 'includes/hooks/vipgate.php is installed too. It keeps forwarding the hooks with its own'
        . ' settings until the addon\'s are saved, so nothing is lost meanwhile (its waiting events are'
        . ' in the same table and the addon sends them); each hook is still sent once. Once they are'
        . ' saved, delete includes/hooks/vipgate.php, includes/hooks/_vipgate_stub.php and'
        . ' includes/hooks/_vipgate_config.php.',
    'open_admin_page' => 'Open vipgate\'s admin page',
    'problem_unreadable' => 'cannot read the addon\'s settings: %s',
    'problem_not_filled_in' => 'the addon module is active but its Bridge URL (http:// or https://) and Webhook'
        . ' secret (whsec_...) are not filled in: nothing is sent to the bridge (events wait in'
        . ' mod_vipgate_spool); enter them in Setup > Addon Modules > vipgate > Configure',
    'problem_secret_unusable' => 'the addon\'s Webhook secret setting is unusable: it is not a whsec_ secret,'
        . ' also not once decrypted with WHMCS\'s DecryptPassword: nothing is sent to the bridge (events'
        . ' wait in mod_vipgate_spool); enter the secret vipgate install-stub --addon printed in'
        . ' Setup > Addon Modules > vipgate > Configure',
    // Setup > Addon Modules: the module, its settings form (vipgate_config()), Activate and Deactivate
    'module_description' => 'Keeps the VIP client group for paying clients and gates support tickets by'
        . ' invoice status: forwards WHMCS\'s hooks to the vipgate bridge.',
    'field_bridge_url' => 'Bridge URL',
    'field_bridge_url_help' => 'vipgate as WHMCS reaches it ([bridge] public_url), e.g. https://vipgate.example.com',
    'field_secret' => 'Webhook secret',
    'field_secret_help' => 'whsec_..., printed by vipgate install-stub --addon',
    'field_fail_open' => 'Allow tickets without an answer',
    'field_fail_open_help' => 'When vipgate does not answer in time, the ticket is allowed (unticked: refused'
        . ' with a short message)',
    'field_connect_timeout_ms' => 'Connect timeout (ms)',
    'field_connect_timeout_ms_help' => 'at most 1000',
    'field_timeout_ms' => 'Timeout (ms)',
    'field_timeout_ms_help' => 'each delivery to the bridge, at most 2000',
    'field_validation_timeout_ms' => 'Ticket check timeout (ms)',
    'field_validation_timeout_ms_help' => 'TicketOpenValidation, at most 1500',
    'field_panel_timeout_ms' => 'Panel timeout (ms)',
    'field_panel_timeout_ms_help' => 'vipgate\'s panels on WHMCS\'s pages, at most 1000',
    'field_precron_timeout_ms' => 'Cron wait (ms)',
    'field_precron_timeout_ms_help' => 'how long PreCronJob waits for the reconcile, at least 1000',
    'activate_failed' => 'vipgate could not create its tables (mod_vipgate_spool, mod_vipgate_state) in WHMCS\'s'
        . ' database: %s',
    'activated' => 'vipgate is active. Now open Configure, enter the Bridge URL and the Webhook secret'
        . ' (vipgate install-stub --addon printed both), tick the admin roles that may open its page and'
        . ' Save Changes.',
    'activated_waiting' => '%s event(s) kept from before wait in mod_vipgate_spool: they are sent once the'
        . ' settings are saved.',
    'deactivate_failed' => 'vipgate could not record its deactivation in WHMCS\'s database (mod_vipgate_state),'
        . ' so its hooks would go on: %s',
    'deactivated' => 'vipgate is deactivated: its hooks no longer forward anything. Its data stays in WHMCS\'s'
        . ' database: mod_vipgate_spool (%s event(s) waiting, %s rejected) and mod_vipgate_state; activating'
        . ' the module again sends what waits (check the settings in Configure then). To remove the data for'
        . ' good: DROP TABLE mod_vipgate_spool, mod_vipgate_state.',
];
