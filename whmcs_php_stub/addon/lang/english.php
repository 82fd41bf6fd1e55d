<?php
/**
 * The words of vipgate's page in WHMCS (Addons > vipgate) in English: WHMCS passes the admin's
 * language file of this folder to vipgate_output() as $vars['_lang'], falling back to the one
 * vipgate_config() names ('english'); a word missing there is taken from this file. %s are the
 * values, in order.
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
];
