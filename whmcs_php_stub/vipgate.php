<?php
/**
 * vipgate hook forwarder for WHMCS.
 *
 * Forwards a whitelist of each hook's $vars to the vipgate bridge as a JSON POST signed with
 * Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature: v1,...). It decides
 * nothing itself: the bridge does.
 *
 * - Short timeouts (connect <= 1 s, total <= 2 s, TicketOpenValidation <= 1.5 s); PreCronJob
 *   alone may wait long (precron_timeout_ms), since no person waits on the cron.
 * - Never throws into WHMCS; failures go to the module log (logModuleCall) in detail, which
 *   WHMCS writes only with Module Debug Mode on, and what an operator must see (the bridge
 *   unreachable for minutes, events rejected or lost, the spool growing, the ticket gate
 *   without an answer) also to the System Activity Log (logActivity), at most once per kind
 *   every ten minutes. Never the secret.
 * - An asynchronous hook only writes its event (webhook id, hook, body, time) into the outbox,
 *   the table mod_vipgate_spool of the WHMCS database, through WHMCS's own PDO, and returns: no
 *   HTTP inside the hook, the row committed (or, inside a WHMCS transaction, committed with it).
 *   At the end of the request, after the page has gone to the browser (fastcgi_finish_request()
 *   under PHP-FPM, litespeed_finish_request() under LiteSpeed, else after the output is flushed),
 *   the stub claims the oldest waiting rows (at most deliver_max_rows rows and deliver_max_ms
 *   ms per request; a claim expires after a minute, so a killed process's rows are taken again)
 *   and sends them signed in batches to POST .../hooks/whmcs/batch, each event with its own
 *   webhook id. Queued or duplicate: the row is deleted. Rejected: kept, marked rejected with
 *   the reason, for 30 days, never retried; the AfterCronJob heartbeat reports those. Whole
 *   batch not taken (no answer, 5xx, 3xx, 429, 401, 408): the rows wait, attempts counted.
 *   A bridge without the batch endpoint (404, 405) or refusing the batch as a whole (another
 *   4xx) gets the rows one by one on the single endpoint. AfterCronJob flushes the rest
 *   (flush_max_rows, flush_max_seconds) the same way, then sends its heartbeat.
 * - Circuit breaker: a delivery the bridge did not take (or a question it did not answer)
 *   opens the breaker for a minute (mod_vipgate_state): no request tries the bridge (events
 *   wait; the ticket gate and the panels answer at once as if the bridge had not answered);
 *   AfterCronJob's flush and PreCronJob still try once (PreCronJob then with timeout_ms, not
 *   precron_timeout_ms); a delivery that succeeds closes it.
 * - PreCronJob (it waits for the reconcile) and the synchronous hooks still POST at once, one
 *   event; a PreCronJob the bridge does not take goes to the outbox. Before its long wait,
 *   PreCronJob checks that the bridge answers at all (a GET, the ordinary timeout): a bridge
 *   that takes connections and answers nothing costs the cron 2 s, not precron_timeout_ms.
 * - Every request names this stub's version (header vipgate-stub-version).
 * - TicketOpenValidation is answered by the bridge at once, asked with the language the client
 *   reads (the session's, else the client's, else WHMCS's default); if it does not answer in
 *   time the ticket is allowed (fail_open) or refused with a short generic message in that
 *   language (Portuguese or English).
 * - Four page hooks show vipgate inside WHMCS, answered by the bridge within one second or
 *   not at all (the page then shows nothing of vipgate): the client summary panel and the
 *   ticket badge for staff (AdminAreaClientSummaryPage, AdminAreaViewTicketPage), the
 *   billing-only departments with a notice (ClientAreaPageSubmitTicket: template variables
 *   `departments` and `vipgate_notice`) and the overdue banner (ClientAreaHomepage). The
 *   banner's trust unlock button posts back to the client-area home; the stub then asks the
 *   bridge to unlock (the client from the session, the form's vipgate_token, WHMCS's CSRF token
 *   kept in WHMCS), waiting up to VIPGATE_TRUST_TIMEOUT_MS.
 * - Synchronous answers are used only when signed by the bridge for this very request (same
 *   webhook id, the same secret, a timestamp within five minutes): nobody between WHMCS and
 *   the bridge can put HTML into WHMCS's pages or decide the ticket gate.
 *
 * This file is the stub's one implementation, a library: it defines functions and registers
 * nothing until a loader calls vipgate_register_hooks(). `vipgate install-stub` installs it
 * with one of two loaders:
 * - the addon module (recommended): modules/addons/vipgate/ with vipgate_stub.php (this file),
 *   hooks.php (loaded by WHMCS on every page, forwarding only while the module is active)
 *   and vipgate.php (the module: its settings form, activation, the admin page); settings
 *   from tbladdonmodules;
 * - includes/hooks/ (the alternative): _vipgate_stub.php (this file), vipgate.php (the loader)
 *   and the settings file _vipgate_config.php (the leading underscore keeps WHMCS from loading
 *   these two as hook files).
 * Each loader requires this file only when no other loader did (a function declared twice
 * would stop WHMCS with a fatal error). Runs on PHP 7.4 to 8.3 with the curl extension; no
 * Composer.
 */

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

use WHMCS\Database\Capsule;

/** This stub's version, sent with every request (equal to the bridge package's; a test checks). */
function vipgate_version()
{
    return '0.1.0';
}

/** Seconds between two System Activity Log entries of one kind. */
const VIPGATE_ACTIVITY_EVERY = 600;
/** A bridge not taking events for this many seconds is reported as unreachable. */
const VIPGATE_UNREACHABLE_AFTER = 300;
/** Waiting events from which the spool is reported as growing. */
const VIPGATE_SPOOL_WARN_ROWS = 100;
/** How long a rejected event is kept in the spool, in seconds (30 days). */
const VIPGATE_REJECTED_KEEP = 2592000;
/** Rejected events listed in the heartbeat (the newest). */
const VIPGATE_REJECTED_LISTED = 10;
/**
 * How long the client-area home waits for the bridge when the client pressed the banner's
 * trust unlock button, in milliseconds (the bridge calls WHMCS's API to unlock).
 */
const VIPGATE_TRUST_TIMEOUT_MS = 15000;
/** How long the breaker stays open after a failed delivery, in seconds. */
const VIPGATE_BREAKER_SECONDS = 60;
/** The mod_vipgate_state name holding until when the breaker is open. */
const VIPGATE_BREAKER = 'breaker_open_until';
/** The mod_vipgate_state name that vipgate_activate() sets and vipgate_deactivate() removes. */
const VIPGATE_ADDON_ACTIVE = 'addon_activated_at';
/** How long a claim on outbox rows lasts, in seconds (then another process may take them). */
const VIPGATE_CLAIM_SECONDS = 60;
/** Most events in one batch (the bridge's limit). */
const VIPGATE_BATCH_LIMIT = 500;
/**
 * The outbox on SQLite and on MySQL/MariaDB (created on first use; vipgate_spool_columns()
 * lists what a table made by an older stub gains). The sandbox's Python emulation of this
 * stub reads these two constants and the state table's from this file.
 */
const VIPGATE_SPOOL_SQLITE = 'CREATE TABLE IF NOT EXISTS mod_vipgate_spool ('
    . ' id INTEGER PRIMARY KEY AUTOINCREMENT,'
    . ' webhook_id VARCHAR(64) NOT NULL UNIQUE,'
    . ' hook VARCHAR(64) NOT NULL,'
    . ' body TEXT NOT NULL,'
    . ' created_at DATETIME NOT NULL,'
    . ' attempts INTEGER NOT NULL DEFAULT 0,'
    . ' last_error TEXT NULL,'
    . ' rejected_at DATETIME NULL,'
    . ' claimed_by VARCHAR(40) NULL,'
    . ' claimed_until BIGINT NULL)';
const VIPGATE_SPOOL_MYSQL = 'CREATE TABLE IF NOT EXISTS mod_vipgate_spool ('
    . ' id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,'
    . ' webhook_id VARCHAR(64) NOT NULL,'
    . ' hook VARCHAR(64) NOT NULL,'
    . ' body MEDIUMTEXT NOT NULL,'
    . ' created_at DATETIME NOT NULL,'
    . ' attempts INT UNSIGNED NOT NULL DEFAULT 0,'
    . ' last_error TEXT NULL,'
    . ' rejected_at DATETIME NULL,'
    . ' claimed_by VARCHAR(40) NULL,'
    . ' claimed_until BIGINT NULL,'
    . ' UNIQUE KEY uq_mod_vipgate_spool_webhook_id (webhook_id)'
    . ') ENGINE=InnoDB DEFAULT CHARSET=utf8mb4';
/** The stub's named timestamps (the breaker, activity-log claims, the heartbeat); MySQL adds its engine. */
const VIPGATE_STATE_TABLE = 'CREATE TABLE IF NOT EXISTS mod_vipgate_state ('
    . ' name VARCHAR(64) NOT NULL PRIMARY KEY,'
    . ' at BIGINT NOT NULL)';

/** Settings used when _vipgate_config.php leaves a key out. */
function vipgate_defaults()
{
    return [
        'url' => '',
        'secret' => '',
        'connect_timeout_ms' => 1000,
        'timeout_ms' => 2000,
        'validation_timeout_ms' => 1500,
        'precron_timeout_ms' => 120000,
        'panel_timeout_ms' => 1000,
        'fail_open' => true,
        'flush_max_rows' => 20000,
        'flush_max_seconds' => 20,
        'deliver_max_rows' => 200,
        'deliver_max_ms' => 300,
        'batch_max_events' => 500,
    ];
}

/**
 * The installs whose loader ran in this PHP process, in load order: 'includes/hooks' (the
 * hook file, its settings file's path as value) and 'addon' (the addon module's hooks.php).
 * Called with $install to add one.
 */
function vipgate_installs($install = null, $settingsFile = null)
{
    static $installs = [];
    if ($install !== null && !isset($installs[$install])) {
        $installs[$install] = $settingsFile;
    }
    return $installs;
}

/**
 * The settings, or null (logged) when there are none usable; read once per process. The
 * addon's (tbladdonmodules) when its hooks.php was loaded and they are filled in; else the
 * includes/hooks settings file's, so that events keep flowing while a move to the addon is
 * under way (activated, settings not entered yet).
 */
function vipgate_settings()
{
    static $config = null;
    if ($config === null) {
        $config = vipgate_settings_read();
    }
    return $config;
}

function vipgate_settings_read()
{
    $installs = vipgate_installs();
    $file = isset($installs['includes/hooks']) ? $installs['includes/hooks'] : null;
    if (array_key_exists('addon', $installs)) {
        $addon = vipgate_addon_settings();
        if ($addon['config'] !== null) {
            if ($file !== null) {
                vipgate_activity('both', 'the addon module and includes/hooks/vipgate.php are both '
                    . 'installed: the addon\'s settings are used; remove includes/hooks/vipgate.php, '
                    . '_vipgate_stub.php and _vipgate_config.php');
            }
            return $addon['config'];
        }
        if ($file === null) {
            if ($addon['problem'] !== '') {
                vipgate_log('config', 'tbladdonmodules', $addon['problem']);
                vipgate_activity('config', $addon['problem']);
            }
            return null;
        }
    }
    return $file === null ? null : vipgate_file_settings($file);
}

/**
 * Whether an event fired while there are no usable settings waits in the outbox for them: yes
 * for an installed stub not (yet) configured, no for a deactivated addon module (off on
 * purpose).
 */
function vipgate_keeps_events_without_settings()
{
    $installs = vipgate_installs();
    return isset($installs['includes/hooks']) || vipgate_addon_settings()['problem'] !== '';
}

/** The includes/hooks install's settings file, or null (logged). */
function vipgate_file_settings($path)
{
    if (!is_file($path)) {
        vipgate_log('config', $path, 'settings file is missing; run vipgate install-stub');
        vipgate_activity('config', 'the settings file includes/hooks/_vipgate_config.php is '
            . 'missing: nothing is sent to the bridge (events wait in mod_vipgate_spool); run '
            . 'vipgate install-stub');
        return null;
    }
    $loaded = include $path;
    if (!is_array($loaded) || !isset($loaded['url'], $loaded['secret'])
        || !vipgate_url_usable($loaded['url'])) {
        vipgate_log('config', $path, 'settings file must return an array with an http(s) url '
            . 'and a secret; run vipgate install-stub');
        vipgate_activity('config', 'the settings file includes/hooks/_vipgate_config.php is not '
            . 'usable: nothing is sent to the bridge (events wait in mod_vipgate_spool); run '
            . 'vipgate install-stub');
        return null;
    }
    return array_merge(vipgate_defaults(), $loaded, ['source' => 'includes/hooks/_vipgate_config.php']);
}

/** The addon's fields in WHMCS's form that hold a number of milliseconds (the rest take their defaults). */
function vipgate_addon_timeouts()
{
    return ['connect_timeout_ms', 'timeout_ms', 'validation_timeout_ms', 'panel_timeout_ms',
        'precron_timeout_ms'];
}

/** The bridge's hooks URL from the base URL entered in the addon's form ('' when not http(s)). */
function vipgate_hooks_url($base)
{
    $base = rtrim(trim((string) $base), '/');
    if (!preg_match('#^https?://[^/\s?\#]+[^\s?\#]*$#i', $base)) {
        return '';
    }
    return substr($base, -strlen('/hooks/whmcs')) === '/hooks/whmcs' ? $base : $base . '/hooks/whmcs';
}

/** The fields of the addon's form (vipgate_config() in modules/addons/vipgate/vipgate.php). */
function vipgate_addon_fields()
{
    return array_merge(['bridge_url', 'secret', 'fail_open'], vipgate_addon_timeouts());
}

/** Whether $secret is a whsec_ secret the stub can sign with (base64, at least 24 bytes). */
function vipgate_usable_secret($secret)
{
    if (!is_string($secret) || strncmp($secret, 'whsec_', 6) !== 0) {
        return false;
    }
    $key = base64_decode(substr($secret, 6), true);
    return $key !== false && strlen($key) >= 24;
}

/**
 * The Webhook secret from the addon's stored value: used as it is when it is a whsec_ secret,
 * else given to WHMCS's local API DecryptPassword (password2 => the value; the answer's
 * `password`), since whether WHMCS stores a password field encrypted is not documented.
 * Null when neither gives a usable secret ('' when the value is empty).
 */
function vipgate_addon_secret($value)
{
    $value = trim((string) $value);
    if ($value === '' || vipgate_usable_secret($value)) {
        return $value;
    }
    if (!function_exists('localAPI')) {
        return null;
    }
    try {
        $answer = localAPI('DecryptPassword', ['password2' => $value]);
    } catch (\Throwable $e) {
        return null;
    }
    if (!is_array($answer) || !isset($answer['result'], $answer['password'])
        || $answer['result'] !== 'success' || !is_string($answer['password'])) {
        return null;
    }
    $secret = trim($answer['password']);
    return vipgate_usable_secret($secret) ? $secret : null;
}

/**
 * A yesno field of the addon's form as stored: ticked for 'on' (what WHMCS's own settings hold
 * for a ticked box), '1', 'yes' or 'true'; anything else, empty or missing, unticked.
 */
function vipgate_addon_yes($value)
{
    return in_array(strtolower(trim((string) $value)), ['on', '1', 'yes', 'true'], true);
}

/** Whether vipgate_activate() ran and vipgate_deactivate() has not since (mod_vipgate_state). */
function vipgate_addon_active()
{
    try {
        return vipgate_state_get(vipgate_pdo(), VIPGATE_ADDON_ACTIVE) !== null;
    } catch (\Throwable $e) {
        return false;
    }
}

/** Record the module as activated (true) or deactivated (false). Throws when the database cannot be used. */
function vipgate_addon_mark_active($pdo, $active)
{
    vipgate_state_create($pdo);
    if ($active) {
        vipgate_state_set($pdo, VIPGATE_ADDON_ACTIVE, time());
    } else {
        vipgate_sql($pdo, 'DELETE FROM mod_vipgate_state WHERE name = ?', [VIPGATE_ADDON_ACTIVE]);
    }
}

/**
 * The addon module's settings. $vars: what WHMCS passed to vipgate_output() (documented to
 * hold the module's settings), preferred when it holds any of the fields; else the module's
 * rows in tbladdonmodules (module 'vipgate', setting, value), read only while vipgate's own
 * record says the module is active, so it does not matter whether WHMCS keeps or deletes them
 * on deactivation. Returns
 * ['config' => array or null, 'problem' => why not, '' when the module is not active].
 */
function vipgate_addon_settings($vars = null)
{
    $values = [];
    foreach (vipgate_addon_fields() as $key) {
        if (is_array($vars) && isset($vars[$key]) && is_scalar($vars[$key])) {
            $values[$key] = (string) $vars[$key];
        }
    }
    if (!$values) {
        if (!vipgate_addon_active()) {
            return ['config' => null, 'problem' => ''];
        }
        try {
            $rows = vipgate_sql(vipgate_pdo(), 'SELECT setting, value FROM tbladdonmodules WHERE module = ?',
                ['vipgate'])->fetchAll(PDO::FETCH_NUM);
            foreach ($rows as $row) {
                $values[(string) $row[0]] = (string) $row[1];
            }
        } catch (\Throwable $e) {
            return ['config' => null, 'problem' => 'cannot read the addon\'s settings: '
                . vipgate_short($e->getMessage()), 'problem_key' => 'problem_unreadable',
                'problem_values' => [vipgate_short($e->getMessage())]];
        }
    }
    // problem: English, for the System Activity Log; problem_key: the addon's lang/*.php word
    // its page shows instead (in the admin's language), with problem_values
    $where = 'Setup > Addon Modules > vipgate > Configure';
    $wait = ': nothing is sent to the bridge (events wait in mod_vipgate_spool); ';
    $url = vipgate_hooks_url(isset($values['bridge_url']) ? $values['bridge_url'] : '');
    $secret = vipgate_addon_secret(isset($values['secret']) ? $values['secret'] : '');
    if ($url === '' || $secret === '') {
        return ['config' => null, 'problem' => 'the addon module is active but its Bridge URL (http:// or '
            . 'https://) and Webhook secret (whsec_...) are not filled in' . $wait . 'enter them in ' . $where,
            'problem_key' => 'problem_not_filled_in', 'problem_values' => []];
    }
    if ($secret === null) {
        return ['config' => null, 'problem' => 'the addon\'s Webhook secret setting is unusable: it is not a'
            . ' whsec_ secret, also not once decrypted with WHMCS\'s DecryptPassword' . $wait . 'enter the'
            . ' secret vipgate install-stub --addon printed in ' . $where,
            'problem_key' => 'problem_secret_unusable', 'problem_values' => []];
    }
    $config = array_merge(vipgate_defaults(), ['url' => $url, 'secret' => $secret,
        'source' => 'the addon\'s settings (' . $where . ')']);
    $config['fail_open'] = vipgate_addon_yes(isset($values['fail_open']) ? $values['fail_open'] : '');
    $problems = [];
    foreach (vipgate_addon_timeouts() as $key) {
        $value = isset($values[$key]) ? trim($values[$key]) : '';
        if ($value !== '' && ctype_digit($value)) {
            $config[$key] = (int) $value;
        } elseif ($value !== '') {
            $problems[] = $key . ' must be a whole number of milliseconds, not "' . vipgate_short($value)
                . '" (' . $config[$key] . ' used)';
        }
    }
    if ($problems) {
        vipgate_activity('addon_settings', 'the addon\'s settings: ' . implode('; ', $problems));
    }
    return ['config' => $config, 'problem' => ''];
}

/**
 * An http(s) URL with a host: what the settings' url must be. Plain string functions, not a
 * regular expression: compiling one costs a request's first hook about 0.08 ms.
 */
function vipgate_url_usable($url)
{
    if (!is_string($url)) {
        return false;
    }
    foreach (['http://', 'https://'] as $scheme) {
        if (strncasecmp($url, $scheme, strlen($scheme)) === 0) {
            $host = substr($url, strlen($scheme), 1);
            return $host !== '' && strpbrk($host, "/ \t\n\r\v\f") === false;
        }
    }
    return false;
}

/**
 * Per forwarded hook, the top-level $vars keys sent to the bridge. It must equal the bridge's
 * bridge.payloads.whitelist() (a test compares the two).
 */
function vipgate_whitelist()
{
    // userid: not in WHMCS's vars; the stub adds it when it sends (vipgate_with_owners)
    $invoice = ['invoiceid', 'userid'];
    $service = ['pid', 'serviceid', 'userid'];
    $ticket = ['deptid', 'priority', 'ticketid', 'ticketmask', 'userid'];
    return [
        'InvoiceCreated' => ['invoiceid', 'source', 'status', 'user', 'userid'],
        'InvoicePaid' => $invoice,
        'InvoiceUnpaid' => $invoice,
        'InvoiceCancelled' => $invoice,
        'InvoiceRefunded' => $invoice,
        'AddInvoicePayment' => $invoice,
        'AfterModuleSuspend' => $service,
        'AfterModuleUnsuspend' => $service,
        'ClientAdd' => ['client_id', 'groupid', 'user_id'],
        'ClientEdit' => ['adminuser', 'groupid', 'language', 'olddata', 'status', 'userid'],
        'ClientClose' => ['userid'],
        'TicketOpen' => $ticket,
        'TicketOpenAdmin' => $ticket,
        'TicketUserReply' => array_merge($ticket, ['replyid', 'status']),
        'TicketPriorityChange' => ['priority', 'ticketid'],
        // language: not in WHMCS's vars; the stub adds the client's (vipgate_client_language)
        'TicketOpenValidation' => ['clientId', 'contactId', 'departmentId', 'isAdmin', 'language', 'priority'],
        'PreCronJob' => [],
        // The stub's own report, not WHMCS's vars: events the bridge rejected (spool).
        'AfterCronJob' => ['rejected_count', 'rejected_recent'],
        'DailyCronJob' => [],
        // Page hooks: the stub builds these vars itself (the client from the page or the
        // session, the ticket's client from tbltickets).
        'AdminAreaClientSummaryPage' => ['userid'],
        'AdminAreaViewTicketPage' => ['ticketid', 'userid'],
        'ClientAreaPageSubmitTicket' => ['language', 'userid'],
        // vipgate_action and vipgate_token: the banner's trust unlock form, when posted
        'ClientAreaHomepage' => ['language', 'userid', 'vipgate_action', 'vipgate_token'],
    ];
}

/** The batch endpoint, beside the single one (the settings' url ends in /hooks/whmcs). */
function vipgate_batch_url($config)
{
    return rtrim($config['url'], '/') . '/batch';
}

/** The hooks answered at once by the bridge (never spooled). */
function vipgate_sync_hooks()
{
    return ['TicketOpenValidation', 'AdminAreaClientSummaryPage', 'AdminAreaViewTicketPage',
        'ClientAreaPageSubmitTicket', 'ClientAreaHomepage'];
}

/** Keys of $source named in $keys whose values are scalars (objects, arrays, null dropped). */
function vipgate_pick_scalars($source, $keys)
{
    $picked = [];
    foreach ($keys as $key) {
        if (array_key_exists($key, $source) && is_scalar($source[$key])) {
            $picked[$key] = $source[$key];
        }
    }
    return $picked;
}

/**
 * The username of the admin behind this request (admin area or API), or null (the cron, the
 * client area, WHMCS before 8.0): WHMCS 8's CurrentUser. Never throws into WHMCS.
 */
function vipgate_current_admin()
{
    try {
        if (!class_exists('WHMCS\\Authentication\\CurrentUser')) {
            return null;
        }
        $current = new \WHMCS\Authentication\CurrentUser();
        $admin = $current->isAuthenticatedAdmin() ? $current->admin() : null;
        if ($admin !== null && isset($admin->username) && is_scalar($admin->username)
            && (string) $admin->username !== '') {
            return substr((string) $admin->username, 0, 255);
        }
    } catch (\Throwable $e) {
        // no admin known
    }
    return null;
}

/**
 * The whitelisted part of a hook's $vars. Module hooks carry the service in $vars['params']
 * (with passwords and server credentials, never sent); ClientEdit's olddata is reduced to the
 * previous groupid and status, and it gains adminuser: who made the change, when an admin did
 * (vipgate shows a staff hold with that name).
 */
function vipgate_pick_vars($hook, $vars)
{
    $lists = vipgate_whitelist();
    if (!isset($lists[$hook]) || !is_array($vars)) {
        return [];
    }
    $keys = $lists[$hook];
    $source = $vars;
    if (($hook === 'AfterModuleSuspend' || $hook === 'AfterModuleUnsuspend')
        && isset($vars['params']) && is_array($vars['params'])) {
        $source = $vars['params'];
    }
    $picked = vipgate_pick_scalars($source, $keys);
    if ($hook === 'TicketOpenValidation' && isset($picked['priority'])) {
        // the raw form field urgency: any text; the bridge takes up to 255 bytes of it
        $picked['priority'] = substr((string) $picked['priority'], 0, 255);
    }
    if ($hook === 'AfterCronJob' && isset($source['rejected_recent']) && is_array($source['rejected_recent'])) {
        $picked['rejected_recent'] = array_values($source['rejected_recent']);
    }
    if ($hook === 'ClientEdit') {
        $admin = vipgate_current_admin();
        if ($admin !== null) {
            $picked['adminuser'] = $admin;
        }
    }
    if ($hook === 'ClientEdit' && isset($source['olddata']) && is_array($source['olddata'])) {
        $old = vipgate_pick_scalars($source['olddata'], ['groupid', 'status']);
        if ($old) {
            $picked['olddata'] = (object) $old;
        }
    }
    return $picked;
}

/** A new event: its webhook id and its body, encoded once; these exact bytes are signed. */
function vipgate_event($hook, $vars)
{
    $body = json_encode(
        [
            'hook' => $hook,
            'vars' => (object) vipgate_pick_vars($hook, $vars),
            'occurred_at' => date('c'),
        ],
        JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE
    );
    if ($body === false) {
        throw new RuntimeException('cannot encode the event as JSON: ' . json_last_error_msg());
    }
    return ['id' => 'msg_' . bin2hex(random_bytes(16)), 'hook' => $hook, 'body' => $body];
}

/** The webhook-signature value: v1, base64 HMAC-SHA256 of "id.timestamp.body". */
function vipgate_signature($secret, $id, $timestamp, $body)
{
    if (!vipgate_usable_secret($secret)) {
        throw new RuntimeException('the webhook secret in the settings is not a whsec_ secret');
    }
    $key = base64_decode(substr($secret, 6), true);
    return 'v1,' . base64_encode(hash_hmac('sha256', $id . '.' . $timestamp . '.' . $body, $key, true));
}

/** Total time allowed for one POST of $hook, in milliseconds. */
function vipgate_timeout_ms($config, $hook)
{
    if ($hook === 'PreCronJob') {
        return max(1000, (int) $config['precron_timeout_ms']);
    }
    if ($hook === 'TicketOpenValidation') {
        return min(1500, max(100, (int) $config['validation_timeout_ms']));
    }
    if (in_array($hook, vipgate_sync_hooks(), true)) {
        return min(1000, max(100, (int) $config['panel_timeout_ms']));
    }
    return min(2000, max(100, (int) $config['timeout_ms']));
}

/** What every request to the bridge keeps to: short timeouts, TLS checked, no redirects. */
function vipgate_curl_limits($config, $timeoutMs)
{
    return [
        CURLOPT_RETURNTRANSFER => true,
        CURLOPT_FOLLOWLOCATION => false,
        CURLOPT_CONNECTTIMEOUT_MS => min(1000, max(100, (int) $config['connect_timeout_ms']), $timeoutMs),
        CURLOPT_TIMEOUT_MS => $timeoutMs,
        CURLOPT_NOSIGNAL => true,
        CURLOPT_SSL_VERIFYPEER => true,
        CURLOPT_SSL_VERIFYHOST => 2,
    ];
}

/**
 * POST one event, signed with the time of this attempt. Returns ['outcome' => 'ok' | 'retry'
 * | 'permanent', 'status' => HTTP status or 0, 'error' => text, 'body' => answer,
 * 'headers' => [lower-case name => value]].
 */
function vipgate_post($config, $id, $body, $timeoutMs, $url = null)
{
    $result = ['outcome' => 'retry', 'status' => 0, 'error' => '', 'body' => '', 'headers' => []];
    if (!function_exists('curl_init')) {
        $result['error'] = 'the PHP curl extension is not installed';
        return $result;
    }
    try {
        $timestamp = time();
        $headers = [
            'Content-Type: application/json',
            'Expect:',
            'User-Agent: vipgate-whmcs-stub/' . vipgate_version(),
            // A header, not a body field: a bridge older than this stub ignores it.
            'vipgate-stub-version: ' . vipgate_version(),
            'webhook-id: ' . $id,
            'webhook-timestamp: ' . $timestamp,
            'webhook-signature: ' . vipgate_signature($config['secret'], $id, $timestamp, $body),
        ];
    } catch (\Throwable $e) {
        $result['error'] = $e->getMessage();
        return $result;
    }
    $curl = curl_init($url === null ? $config['url'] : $url);
    if ($curl === false) {
        $result['error'] = 'curl_init failed';
        return $result;
    }
    $answerHeaders = [];
    curl_setopt_array($curl, [
        CURLOPT_HEADERFUNCTION => function ($handle, $line) use (&$answerHeaders) {
            $parts = explode(':', $line, 2);
            if (count($parts) === 2) {
                $answerHeaders[strtolower(trim($parts[0]))] = trim($parts[1]);
            }
            return strlen($line);
        },
        CURLOPT_POST => true,
        CURLOPT_POSTFIELDS => $body,
        CURLOPT_HTTPHEADER => $headers,
    ] + vipgate_curl_limits($config, $timeoutMs));
    $answer = curl_exec($curl);
    $errno = curl_errno($curl);
    $result['error'] = $errno ? 'curl error ' . $errno . ': ' . curl_error($curl) : '';
    $result['status'] = (int) curl_getinfo($curl, CURLINFO_RESPONSE_CODE);
    if (PHP_VERSION_ID < 80000) {
        curl_close($curl);
    }
    $result['body'] = is_string($answer) ? $answer : '';
    $result['headers'] = $answerHeaders;
    $status = $result['status'];
    if (!$errno && $status >= 200 && $status < 300) {
        $result['outcome'] = 'ok';
    } elseif (!$errno && $status >= 400 && $status < 500 && !in_array($status, [401, 408, 429], true)) {
        // Refused: sending it again gets the same answer. 401 is not: a secret or a clock to
        // fix, after which the same event is accepted, so it is kept and retried.
        $result['outcome'] = 'permanent';
    }
    if (!$errno && $result['outcome'] !== 'ok') {
        $result['error'] = 'HTTP ' . $status . ': ' . substr($result['body'], 0, 500);
    }
    return $result;
}

/**
 * Whether the bridge answers at all within the ordinary timeout: '' when it does (any HTTP
 * status counts; a GET of the hooks URL gets 405 from a bridge with a free worker), else why
 * not. PreCronJob asks before its long wait, so a bridge that takes connections and answers
 * nothing (every worker busy, a stuck proxy) costs the cron the ordinary timeout, not
 * precron_timeout_ms.
 */
function vipgate_bridge_silent($config)
{
    return vipgate_get($config, $config['url'])['error'];
}

/**
 * GET $url within the ordinary timeout and the limits of every request to the bridge:
 * ['error' => '' when it answered at all, else why not, 'status' => HTTP status or 0,
 * 'body' => the answer].
 */
function vipgate_get($config, $url)
{
    $result = ['error' => '', 'status' => 0, 'body' => ''];
    if (!function_exists('curl_init')) {
        $result['error'] = 'the PHP curl extension is not installed';
        return $result;
    }
    $curl = curl_init($url);
    if ($curl === false) {
        $result['error'] = 'curl_init failed';
        return $result;
    }
    $timeoutMs = vipgate_timeout_ms($config, 'probe');
    curl_setopt_array($curl, [
        CURLOPT_HTTPGET => true,
        CURLOPT_HTTPHEADER => ['User-Agent: vipgate-whmcs-stub/' . vipgate_version()],
    ] + vipgate_curl_limits($config, $timeoutMs));
    $answer = curl_exec($curl);
    $errno = curl_errno($curl);
    $result['error'] = $errno ? 'curl error ' . $errno . ': ' . curl_error($curl) : '';
    $result['status'] = (int) curl_getinfo($curl, CURLINFO_RESPONSE_CODE);
    $result['body'] = is_string($answer) ? $answer : '';
    if (PHP_VERSION_ID < 80000) {
        curl_close($curl);
    }
    return $result;
}

/** Write to the WHMCS module log (kept by WHMCS only in Module Debug Mode); never throws. */
function vipgate_log($action, $request, $response)
{
    try {
        if (function_exists('logModuleCall')) {
            logModuleCall('vipgate', $action, $request, $response);
        } else {
            error_log('vipgate ' . $action . ': ' . (is_string($response) ? $response : json_encode($response)));
        }
    } catch (\Throwable $e) {
        // Nowhere left to report to; WHMCS must go on.
    }
}

/** A URL as it may be shown: no credentials. */
function vipgate_shown_url($url)
{
    return preg_replace('#//[^/@]*@#', '//', (string) $url);
}

/** What is logged about an event: never the secret, nor credentials in the URL. */
function vipgate_log_request($config, $event)
{
    return [
        'url' => vipgate_shown_url($config['url']),
        'webhook_id' => $event['id'],
        'body' => $event['body'],
    ];
}

/** WHMCS's own database connection (plain PDO through Capsule). */
function vipgate_pdo()
{
    return Capsule::connection()->getPdo();
}

/** Run one prepared statement; throws on failure whatever the PDO error mode. */
function vipgate_sql($pdo, $sql, $params = [])
{
    $statement = $pdo->prepare($sql);
    if ($statement === false) {
        throw new RuntimeException('cannot prepare: ' . implode(' ', $pdo->errorInfo()));
    }
    foreach (array_values($params) as $i => $value) {
        $statement->bindValue($i + 1, $value, is_int($value) ? PDO::PARAM_INT : (
            $value === null ? PDO::PARAM_NULL : PDO::PARAM_STR));
    }
    if ($statement->execute() === false) {
        throw new RuntimeException('cannot execute: ' . implode(' ', $statement->errorInfo()));
    }
    return $statement;
}

/** A DATETIME column's value for $now (seconds since 1970), in UTC. */
function vipgate_sql_time($now)
{
    return gmdate('Y-m-d H:i:s', $now);
}

/** Whether a query runs (the table, or the column, is there). */
function vipgate_sql_works($pdo, $sql)
{
    try {
        vipgate_sql($pdo, $sql);
        return true;
    } catch (\Throwable $e) {
        return false;
    }
}

/**
 * The stub's own small table of named timestamps, shared by WHMCS's PHP processes (which
 * share nothing else): when each kind was last written to the activity log, since when the
 * heartbeat has failed.
 */
function vipgate_state_create($pdo)
{
    $mysql = $pdo->getAttribute(PDO::ATTR_DRIVER_NAME) === 'mysql';
    vipgate_sql($pdo, VIPGATE_STATE_TABLE . ($mysql ? ' ENGINE=InnoDB DEFAULT CHARSET=utf8mb4' : ''));
}

/**
 * Take the right to act on $name now, if nobody took it in the last $every seconds: one
 * UPDATE (or INSERT) decides, so two processes never both win. Throws when the database
 * cannot be used.
 */
function vipgate_state_claim($pdo, $name, $now, $every)
{
    $sql = 'UPDATE mod_vipgate_state SET at = ? WHERE name = ? AND at <= ?';
    try {
        $claimed = vipgate_sql($pdo, $sql, [$now, $name, $now - $every])->rowCount() > 0;
    } catch (\Throwable $e) {
        vipgate_state_create($pdo);
        $claimed = false;
    }
    if ($claimed) {
        return true;
    }
    try {
        vipgate_sql($pdo, 'INSERT INTO mod_vipgate_state (name, at) VALUES (?, ?)', [$name, $now]);
        return true;
    } catch (\Throwable $e) {
        return false; // there already, within $every (or another process inserted it now)
    }
}

/** The timestamp stored under $name, or null. */
function vipgate_state_get($pdo, $name)
{
    try {
        $row = vipgate_sql($pdo, 'SELECT at FROM mod_vipgate_state WHERE name = ?', [$name])
            ->fetch(PDO::FETCH_NUM);
    } catch (\Throwable $e) {
        return null;
    }
    return $row ? (int) $row[0] : null;
}

/**
 * Write to WHMCS's System Activity Log (always kept, unlike the module log), at most once per
 * $kind every VIPGATE_ACTIVITY_EVERY seconds across all of WHMCS's processes. $message must
 * hold no secret. Never throws; without a usable database nothing is written (the module
 * log has the detail).
 */
function vipgate_activity($kind, $message, $now = null)
{
    try {
        if (!function_exists('logActivity')) {
            return;
        }
        $now = $now === null ? time() : $now;
        if (!vipgate_state_claim(vipgate_pdo(), 'activity:' . $kind, $now, VIPGATE_ACTIVITY_EVERY)) {
            return;
        }
        logActivity('vipgate: ' . $message);
    } catch (\Throwable $e) {
        vipgate_log('activity', '', 'cannot write to the activity log: ' . $e->getMessage());
    }
}

/** An error text short enough for the activity log. */
function vipgate_short($text)
{
    $text = preg_replace('/\s+/', ' ', (string) $text);
    return strlen($text) > 300 ? substr($text, 0, 300) . '...' : $text;
}

function vipgate_spool_table_exists($pdo)
{
    return vipgate_sql_works($pdo, 'SELECT COUNT(*) FROM mod_vipgate_spool WHERE 1 = 0');
}

function vipgate_spool_create($pdo)
{
    $driver = $pdo->getAttribute(PDO::ATTR_DRIVER_NAME);
    if ($driver === 'sqlite') {
        $sql = VIPGATE_SPOOL_SQLITE;
    } elseif ($driver === 'mysql') {
        $sql = VIPGATE_SPOOL_MYSQL;
    } else {
        throw new RuntimeException('cannot create mod_vipgate_spool on a ' . $driver . ' database');
    }
    vipgate_sql($pdo, $sql);
}

/** Columns added since the first stub, in order: an older table gains them in place. */
function vipgate_spool_columns()
{
    return [
        'rejected_at' => 'DATETIME NULL',
        'claimed_by' => 'VARCHAR(40) NULL',
        'claimed_until' => 'BIGINT NULL',
    ];
}

/**
 * The outbox table (mod_vipgate_spool) as this stub uses it: created on first use; a table
 * made by an older stub gains the columns it lacks (rejected_at: NULL waiting to be sent, set
 * refused by the bridge; claimed_by, claimed_until: the process sending it and until when).
 */
function vipgate_spool_ensure($pdo)
{
    if (vipgate_sql_works($pdo, 'SELECT rejected_at, claimed_by, claimed_until FROM mod_vipgate_spool WHERE 1 = 0')) {
        return;
    }
    if (!vipgate_spool_table_exists($pdo)) {
        vipgate_spool_create($pdo);
        return;
    }
    foreach (vipgate_spool_columns() as $column => $type) {
        if (vipgate_sql_works($pdo, 'SELECT ' . $column . ' FROM mod_vipgate_spool WHERE 1 = 0')) {
            continue;
        }
        try {
            vipgate_sql($pdo, 'ALTER TABLE mod_vipgate_spool ADD COLUMN ' . $column . ' ' . $type);
        } catch (\Throwable $e) {
            if (!vipgate_sql_works($pdo, 'SELECT ' . $column . ' FROM mod_vipgate_spool WHERE 1 = 0')) {
                throw $e; // not another process adding it at the same time
            }
        }
    }
}

/**
 * Keep an event: waiting for the next AfterCronJob, or ($rejected) refused by the bridge,
 * with the reason, never sent again.
 */
function vipgate_spool($event, $error, $rejected = false)
{
    $pdo = vipgate_pdo();
    $sql = 'INSERT INTO mod_vipgate_spool (webhook_id, hook, body, created_at, attempts, last_error,'
        . ' rejected_at) VALUES (?, ?, ?, ?, ?, ?, ?)';
    $now = vipgate_sql_time(time());
    $row = [$event['id'], $event['hook'], $event['body'], $now, 1, substr($error, 0, 1000),
        $rejected ? $now : null];
    try {
        vipgate_sql($pdo, $sql, $row);
    } catch (\Throwable $e) {
        if (vipgate_sql_works($pdo, 'SELECT rejected_at FROM mod_vipgate_spool WHERE 1 = 0')) {
            throw $e;
        }
        vipgate_spool_ensure($pdo);
        vipgate_sql($pdo, $sql, $row);
    }
}

/** The activity-log line about an event the bridge refused. */
function vipgate_rejected_activity($event, $error)
{
    vipgate_activity('rejected', 'the bridge rejected a ' . $event['hook'] . ' event ('
        . $event['id'] . '): ' . vipgate_short($error) . '. It is kept in mod_vipgate_spool, '
        . 'marked rejected, for 30 days and reported to the bridge; see vipgate check.');
}

/**
 * After an event could not be delivered: report in the activity log a bridge that has not
 * taken events for VIPGATE_UNREACHABLE_AFTER seconds (oldest waiting event, or failing
 * heartbeats), and a spool of VIPGATE_SPOOL_WARN_ROWS waiting events or more.
 */
function vipgate_report_backlog($pdo, $config, $error, $now)
{
    $waiting = 0;
    $since = vipgate_state_get($pdo, 'heartbeat_failing_since');
    if (vipgate_spool_table_exists($pdo)) {
        vipgate_spool_ensure($pdo);
        $row = vipgate_sql($pdo, 'SELECT COUNT(*), MIN(created_at) FROM mod_vipgate_spool'
            . ' WHERE rejected_at IS NULL')->fetch(PDO::FETCH_NUM);
        $waiting = (int) $row[0];
        $oldest = $row[1] === null ? false : strtotime($row[1] . ' UTC');
        if ($oldest !== false) {
            $since = $since === null ? $oldest : min($since, $oldest);
        }
    }
    $url = vipgate_shown_url($config['url']);
    if ($since !== null && $now - $since >= VIPGATE_UNREACHABLE_AFTER) {
        vipgate_activity('unreachable', 'the bridge at ' . $url . ' has not taken events for '
            . (int) floor(($now - $since) / 60) . ' minutes (' . $waiting . ' waiting in '
            . 'mod_vipgate_spool, delivered after WHMCS\'s requests (none for a minute after a '
            . 'failure) and flushed by each cron run); last error: ' . vipgate_short($error), $now);
    }
    if ($waiting >= VIPGATE_SPOOL_WARN_ROWS) {
        vipgate_activity('spool', $waiting . ' events are waiting in mod_vipgate_spool for the '
            . 'bridge at ' . $url . '; last error: ' . vipgate_short($error), $now);
    }
}

/**
 * Set the timestamp stored under $name (insert or update). Throws when the database cannot be
 * used.
 */
function vipgate_state_set($pdo, $name, $at)
{
    $update = 'UPDATE mod_vipgate_state SET at = ? WHERE name = ?';
    try {
        $changed = vipgate_sql($pdo, $update, [$at, $name])->rowCount() > 0;
    } catch (\Throwable $e) {
        vipgate_state_create($pdo);
        $changed = false;
    }
    if ($changed) {
        return;
    }
    try {
        vipgate_sql($pdo, 'INSERT INTO mod_vipgate_state (name, at) VALUES (?, ?)', [$name, $at]);
    } catch (\Throwable $e) {
        vipgate_sql($pdo, $update, [$at, $name]); // there already (MySQL counts changed rows only)
    }
}

/** Until when the breaker is open (a past time: it was, a success has not closed it yet), or null. */
function vipgate_breaker_until()
{
    try {
        return vipgate_state_get(vipgate_pdo(), VIPGATE_BREAKER);
    } catch (\Throwable $e) {
        return null; // no database: nothing known, the bridge is tried
    }
}

/** Whether the breaker keeps requests from trying the bridge now. */
function vipgate_breaker_is_open($until, $now)
{
    return $until !== null && $until > $now;
}

/**
 * The bridge did not take a delivery (or answer a question): for VIPGATE_BREAKER_SECONDS no
 * request tries it. Returns the words to add to the module log line ('' when it was open
 * already). The activity log hears of it at most once per ten minutes. Never throws.
 */
function vipgate_breaker_open($config, $error)
{
    try {
        $pdo = vipgate_pdo();
        $now = time();
        $was = vipgate_state_get($pdo, VIPGATE_BREAKER);
        vipgate_state_set($pdo, VIPGATE_BREAKER, $now + VIPGATE_BREAKER_SECONDS);
        if (vipgate_breaker_is_open($was, $now)) {
            return '';
        }
        vipgate_activity('breaker', 'the bridge at ' . vipgate_shown_url($config['url']) . ' did not '
            . 'take events (' . vipgate_short($error) . '): for the next minute no request waits for '
            . 'it; events wait in mod_vipgate_spool, the ticket gate and the panels answer at once '
            . 'as if it had not answered', $now);
        return '; breaker opened for ' . VIPGATE_BREAKER_SECONDS . ' s';
    } catch (\Throwable $e) {
        return '; the breaker could not be opened: ' . $e->getMessage();
    }
}

/** A delivery succeeded: close the breaker if it was noted ($until: what was read). Never throws. */
function vipgate_breaker_close($config, $until)
{
    if ($until === null) {
        return;
    }
    try {
        $deleted = vipgate_sql(vipgate_pdo(), 'DELETE FROM mod_vipgate_state WHERE name = ?', [VIPGATE_BREAKER])
            ->rowCount();
        if ($deleted > 0) {
            vipgate_log('breaker', vipgate_shown_url($config['url']), 'the bridge takes events again: breaker closed');
            vipgate_activity('breaker_closed', 'the bridge at ' . vipgate_shown_url($config['url'])
                . ' takes events again (breaker closed)');
        }
    } catch (\Throwable $e) {
        vipgate_log('breaker', '', 'cannot close the breaker: ' . $e->getMessage());
    }
}

/**
 * Write an event into the outbox, waiting to be sent (attempts 0). Committed when this
 * returns, unless WHMCS holds a transaction open on its connection: then with that
 * transaction (an event of a change WHMCS rolls back is rolled back with it). Throws when the
 * table cannot be written.
 */
function vipgate_outbox_add($event)
{
    $pdo = vipgate_pdo();
    $sql = 'INSERT INTO mod_vipgate_spool (webhook_id, hook, body, created_at, attempts) VALUES (?, ?, ?, ?, 0)';
    $row = [$event['id'], $event['hook'], $event['body'], vipgate_sql_time(time())];
    try {
        vipgate_sql($pdo, $sql, $row);
    } catch (\Throwable $e) {
        if (vipgate_spool_table_exists($pdo)) {
            vipgate_spool_ensure($pdo); // an older table: gains what it lacks, or throws
        } else {
            vipgate_spool_create($pdo);
        }
        vipgate_sql($pdo, $sql, $row);
    }
}

/** Deliver the outbox once this request is over (registered once per PHP process). */
function vipgate_deliver_later()
{
    static $registered = false;
    if ($registered) {
        return;
    }
    $registered = true;
    // Registered from a shutdown function, so it runs after every other one WHMCS registered.
    register_shutdown_function(function () {
        register_shutdown_function('vipgate_deliver_after_response');
    });
}

/**
 * The end of a request that wrote to the outbox: the page goes to the browser first, then the
 * waiting rows are sent (bounded by deliver_max_rows and deliver_max_ms), unless the breaker
 * is open. Never throws.
 */
function vipgate_deliver_after_response()
{
    try {
        ignore_user_abort(true);
        if (session_status() === PHP_SESSION_ACTIVE) {
            session_write_close(); // the client's next request must not wait for this one
        }
        if (function_exists('fastcgi_finish_request')) {
            fastcgi_finish_request();
        } elseif (function_exists('litespeed_finish_request')) {
            litespeed_finish_request();
        } else {
            while (ob_get_level() > 0 && @ob_end_flush()) {
                // the page's output buffers, out before the delivery
            }
            flush();
        }
        $config = vipgate_settings();
        if ($config !== null) {
            vipgate_deliver($config, (int) $config['deliver_max_rows'],
                max(10, (int) $config['deliver_max_ms']) / 1000, false);
        }
    } catch (\Throwable $e) {
        vipgate_log('deliver', '', 'cannot deliver the outbox: ' . get_class($e) . ': ' . $e->getMessage());
    }
}

/**
 * Claim up to $limit of the oldest waiting rows for this process: one UPDATE takes rows whose
 * claim is empty or expired, so two processes never hold the same row. Returns [token, rows].
 */
function vipgate_outbox_claim($pdo, $limit)
{
    $token = bin2hex(random_bytes(16));
    $now = time();
    $where = 'rejected_at IS NULL AND (claimed_until IS NULL OR claimed_until < ?)';
    if ($pdo->getAttribute(PDO::ATTR_DRIVER_NAME) === 'mysql') {
        try {
            // Lock only the rows claimed, no gaps: hooks inserting meanwhile do not wait.
            $pdo->exec('SET TRANSACTION ISOLATION LEVEL READ COMMITTED');
        } catch (\Throwable $e) {
            // inside a transaction of WHMCS's: its own level then
        }
        $claimed = vipgate_sql($pdo, 'UPDATE mod_vipgate_spool SET claimed_by = ?, claimed_until = ? WHERE '
            . $where . ' ORDER BY id LIMIT ?', [$token, $now + VIPGATE_CLAIM_SECONDS, $now, $limit])->rowCount();
    } else {
        $claimed = vipgate_sql($pdo, 'UPDATE mod_vipgate_spool SET claimed_by = ?, claimed_until = ? WHERE id IN'
            . ' (SELECT id FROM mod_vipgate_spool WHERE ' . $where . ' ORDER BY id LIMIT ?)',
            [$token, $now + VIPGATE_CLAIM_SECONDS, $now, $limit])->rowCount();
    }
    if ($claimed === 0) {
        return [$token, []];
    }
    $rows = vipgate_sql($pdo, 'SELECT id, webhook_id, hook, body FROM mod_vipgate_spool WHERE claimed_by = ?'
        . ' ORDER BY id', [$token])->fetchAll(PDO::FETCH_ASSOC);
    return [$token, $rows];
}

/** Give claimed rows back, waiting again; $error (when given) counts as an attempt. */
function vipgate_outbox_release($pdo, $token, $error = null, $ids = null)
{
    $sql = 'UPDATE mod_vipgate_spool SET claimed_by = NULL, claimed_until = NULL'
        . ($error === null ? '' : ', attempts = attempts + 1, last_error = ?') . ' WHERE claimed_by = ?';
    $params = $error === null ? [$token] : [substr($error, 0, 1000), $token];
    if ($ids !== null) {
        if (!$ids) {
            return;
        }
        $sql .= ' AND id IN (' . implode(',', array_map('intval', $ids)) . ')';
    }
    vipgate_sql($pdo, $sql, $params);
}

/** Keep a claimed row as rejected by the bridge (30 days, never sent again), logged. */
function vipgate_outbox_reject($pdo, $config, $row, $error, $action)
{
    vipgate_sql($pdo, 'UPDATE mod_vipgate_spool SET attempts = attempts + 1, last_error = ?, rejected_at = ?,'
        . ' claimed_by = NULL, claimed_until = NULL WHERE id = ?',
        [substr($error, 0, 1000), vipgate_sql_time(time()), (int) $row['id']]);
    $event = ['id' => (string) $row['webhook_id'], 'hook' => (string) $row['hook'], 'body' => (string) $row['body']];
    vipgate_log($action, vipgate_log_request($config, $event),
        'bridge rejected the event, kept as rejected, not retried: ' . $error);
    vipgate_rejected_activity($event, $error);
}

function vipgate_outbox_delete($pdo, $ids)
{
    if ($ids) {
        vipgate_sql($pdo, 'DELETE FROM mod_vipgate_spool WHERE id IN (' . implode(',', array_map('intval', $ids)) . ')');
    }
}

/**
 * Send outbox rows, oldest first, in batches (each event with its own webhook id, the batch
 * signed afresh), until none waits, $maxRows rows or $maxSeconds seconds. Unless $cron, nothing
 * is tried while the breaker is open; a batch the bridge does not take stops the delivery,
 * gives the rows back and opens the breaker. Returns ['tried' => bool, 'failed' => bool].
 */
function vipgate_deliver($config, $maxRows, $maxSeconds, $cron)
{
    $pdo = vipgate_pdo();
    $until = vipgate_state_get($pdo, VIPGATE_BREAKER);
    if (!$cron && vipgate_breaker_is_open($until, time())) {
        return ['tried' => false, 'failed' => false];
    }
    vipgate_spool_ensure($pdo);
    $deadline = microtime(true) + $maxSeconds;
    $left = max(0, (int) $maxRows);
    $size = min(VIPGATE_BATCH_LIMIT, max(1, (int) $config['batch_max_events']));
    $tried = false;
    while ($left > 0 && microtime(true) < $deadline) {
        list($token, $rows) = vipgate_outbox_claim($pdo, min($size, $left));
        if (!$rows) {
            break;
        }
        $left -= count($rows);
        $tried = true;
        $error = vipgate_send_rows($pdo, $config, $token, $rows, $deadline);
        if ($error !== '') {
            $opened = vipgate_breaker_open($config, $error);
            vipgate_log($cron ? 'flush' : 'deliver', vipgate_shown_url($config['url']),
                'bridge not taking events, ' . count($rows) . ' kept waiting, delivery stopped: ' . $error . $opened);
            vipgate_report_backlog($pdo, $config, $error, time());
            return ['tried' => true, 'failed' => true];
        }
        vipgate_breaker_close($config, $until);
        $until = null;
    }
    return ['tried' => $tried, 'failed' => false];
}

/**
 * The rows with each invoice event's body naming the invoice's client (vars.userid) from
 * WHMCS's tblinvoices, one SELECT for all of them. WHMCS's invoice hooks pass only the invoice
 * id; read here, when the events are sent after the response, it costs WHMCS's request
 * nothing, and the bridge need not ask WHMCS whose invoice it is. A body that already has a
 * userid, is not an invoice event's, or whose invoice is not found goes as it is; so do all
 * of them when the table cannot be read.
 */
function vipgate_with_owners($pdo, $rows)
{
    $lists = vipgate_whitelist();
    $events = [];
    foreach ($rows as $i => $row) {
        $hook = (string) $row['hook'];
        if (!isset($lists[$hook]) || !in_array('invoiceid', $lists[$hook], true)) {
            continue;
        }
        $event = json_decode((string) $row['body']);
        if ($event instanceof \stdClass && isset($event->vars) && $event->vars instanceof \stdClass
            && isset($event->vars->invoiceid) && !isset($event->vars->userid)
            && vipgate_id($event->vars->invoiceid) > 0) {
            $events[$i] = $event;
        }
    }
    if (!$events) {
        return $rows;
    }
    $ids = array_unique(array_map(function ($event) {
        return vipgate_id($event->vars->invoiceid);
    }, $events));
    try {
        $owners = [];
        foreach (vipgate_sql($pdo, 'SELECT id, userid FROM tblinvoices WHERE id IN ('
            . implode(',', $ids) . ')')->fetchAll(PDO::FETCH_NUM) as $found) {
            $owners[(int) $found[0]] = vipgate_id((string) $found[1]);
        }
    } catch (\Throwable $e) {
        return $rows; // sent without: the bridge asks WHMCS
    }
    foreach ($events as $i => $event) {
        $owner = isset($owners[vipgate_id($event->vars->invoiceid)])
            ? $owners[vipgate_id($event->vars->invoiceid)] : 0;
        if ($owner > 0) {
            $event->vars->userid = $owner;
            $body = json_encode($event, JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE);
            if ($body !== false) {
                $rows[$i]['body'] = $body;
            }
        }
    }
    return $rows;
}

/**
 * Send claimed rows as one batch. Returns '' when the bridge settled every row (deleted,
 * kept as rejected, or given back after the deadline), else why it did not take them (the
 * rows are given back, an attempt counted).
 */
function vipgate_send_rows($pdo, $config, $token, $rows, $deadline)
{
    $events = [];
    $sent = [];
    foreach (vipgate_with_owners($pdo, $rows) as $row) {
        $body = ltrim((string) $row['body']);
        if (!(json_decode($body) instanceof \stdClass)) {
            vipgate_outbox_reject($pdo, $config, $row, 'the kept body is not a JSON object', 'deliver');
            continue;
        }
        $rest = ltrim(substr($body, 1));
        // The stored bytes as they are, with the event's own webhook id in front.
        $events[] = '{"id":' . json_encode((string) $row['webhook_id'])
            . (substr($rest, 0, 1) === '}' ? '' : ',') . $rest;
        $sent[] = $row;
    }
    if (!$sent) {
        return '';
    }
    $batch = '{"events":[' . implode(',', $events) . ']}';
    $result = vipgate_post($config, 'batch_' . bin2hex(random_bytes(16)), $batch,
        vipgate_timeout_ms($config, 'batch'), vipgate_batch_url($config));
    if ($result['outcome'] === 'retry') {
        vipgate_outbox_release($pdo, $token, $result['error']);
        return $result['error'];
    }
    if ($result['outcome'] === 'permanent') {
        // No batch endpoint (an older bridge), or the batch refused as a whole: each event
        // alone, so that each gets its own answer.
        return vipgate_send_singly($pdo, $config, $token, $sent, $deadline);
    }
    $answer = json_decode($result['body'], true);
    $results = is_array($answer) && isset($answer['results']) && is_array($answer['results'])
        ? array_values($answer['results']) : null;
    if ($results === null || count($results) !== count($sent)) {
        $error = 'HTTP ' . $result['status'] . ' with an answer that is not one result per event: '
            . substr($result['body'], 0, 300);
        vipgate_outbox_release($pdo, $token, $error);
        return $error;
    }
    $done = [];
    $unsettled = [];
    foreach ($sent as $i => $row) {
        $one = is_array($results[$i]) ? $results[$i] : [];
        $status = isset($one['status']) && is_string($one['status']) ? $one['status'] : '';
        $id = isset($one['id']) ? $one['id'] : null;
        if ($id !== null && $id !== (string) $row['webhook_id']) {
            $status = ''; // an answer about another event
        }
        if ($status === 'queued' || $status === 'duplicate') {
            $done[] = (int) $row['id'];
        } elseif ($status === 'rejected') {
            $why = isset($one['error']) ? json_encode($one['error'], JSON_UNESCAPED_SLASHES) : '{}';
            vipgate_outbox_reject($pdo, $config, $row, 'rejected in a batch: ' . $why, 'deliver');
        } else {
            $unsettled[] = (int) $row['id'];
        }
    }
    vipgate_outbox_delete($pdo, $done);
    if ($unsettled) {
        $error = 'HTTP ' . $result['status'] . ' without a usable result for ' . count($unsettled) . ' event(s)';
        vipgate_outbox_release($pdo, $token, $error, $unsettled);
        return $error;
    }
    return '';
}

/** The rows one by one to the single endpoint (same ids and bodies, each signed afresh). */
function vipgate_send_singly($pdo, $config, $token, $rows, $deadline)
{
    $timeoutMs = vipgate_timeout_ms($config, 'batch');
    foreach ($rows as $row) {
        if (microtime(true) >= $deadline) {
            vipgate_outbox_release($pdo, $token); // not tried: no attempt counted
            return '';
        }
        $result = vipgate_post($config, (string) $row['webhook_id'], (string) $row['body'], $timeoutMs);
        if ($result['outcome'] === 'ok') {
            vipgate_outbox_delete($pdo, [(int) $row['id']]);
        } elseif ($result['outcome'] === 'permanent') {
            vipgate_outbox_reject($pdo, $config, $row, $result['error'], 'deliver');
        } else {
            vipgate_outbox_release($pdo, $token, $result['error'], [(int) $row['id']]);
            vipgate_outbox_release($pdo, $token);
            return $result['error'];
        }
    }
    return '';
}

/**
 * Forward one hook event. Asynchronous hooks: into the outbox, delivered after the response;
 * when the outbox cannot be written, sent at once as the only way left. PreCronJob and the
 * AfterCronJob heartbeat: sent at once (a PreCronJob not taken goes to the outbox; the
 * heartbeat is not kept). Without usable settings an asynchronous event still goes to the
 * outbox (see vipgate_keeps_events_without_settings) and nothing is sent.
 */
function vipgate_forward($hook, $vars)
{
    try {
        $config = vipgate_settings();
        $now = $hook === 'PreCronJob' || $hook === 'AfterCronJob';
        if ($config === null) {
            if (!$now && vipgate_keeps_events_without_settings()) {
                vipgate_outbox_add(vipgate_event($hook, $vars)); // sent once there are settings
            }
            return;
        }
        $event = vipgate_event($hook, $vars);
        $kept = '';
        if (!$now) {
            try {
                vipgate_outbox_add($event);
                vipgate_deliver_later();
                return;
            } catch (\Throwable $e) {
                $kept = $e->getMessage();
            }
        }
        $until = vipgate_breaker_until();
        $timeoutMs = vipgate_timeout_ms($config, $hook);
        $result = null;
        if ($hook === 'PreCronJob' && vipgate_breaker_is_open($until, time())) {
            $timeoutMs = vipgate_timeout_ms($config, 'batch'); // tried once, not waited on
        } elseif ($hook === 'PreCronJob') {
            // The long wait only for a bridge that answers: a hung one costs the cron 2 s.
            $silent = vipgate_bridge_silent($config);
            if ($silent !== '') {
                $result = ['outcome' => 'retry', 'status' => 0, 'body' => '', 'headers' => [],
                    'error' => 'the bridge did not answer before the long wait: ' . $silent];
            }
        }
        if ($result === null) {
            $result = vipgate_post($config, $event['id'], $event['body'], $timeoutMs);
        }
        if ($hook === 'AfterCronJob') {
            vipgate_note_heartbeat($result['outcome'] !== 'retry');
        }
        $request = vipgate_log_request($config, $event);
        if ($result['outcome'] === 'ok') {
            vipgate_breaker_close($config, $until);
            if ($kept !== '') {
                vipgate_log($hook, $request, 'the outbox could not be written (' . $kept . '): sent at once');
            }
            return;
        }
        if ($result['outcome'] === 'permanent') {
            vipgate_rejected_activity($event, $result['error']);
            if ($hook === 'AfterCronJob') {
                // A heartbeat every cron run: the reason is in the activity log, once.
                vipgate_log($hook, $request, 'bridge rejected the heartbeat: ' . $result['error']);
                return;
            }
            try {
                if ($kept !== '') {
                    throw new RuntimeException($kept);
                }
                vipgate_spool($event, $result['error'], true);
                vipgate_log($hook, $request, 'bridge rejected the event, kept as rejected, '
                    . 'not retried: ' . $result['error']);
            } catch (\Throwable $e) {
                vipgate_log($hook, $request, 'bridge rejected the event (' . $result['error']
                    . ') and it could not be kept: ' . $e->getMessage());
            }
            return;
        }
        $opened = vipgate_breaker_open($config, $result['error']);
        if ($hook === 'AfterCronJob') {
            // A heartbeat every cron run, with nothing to reconcile: not worth a spool row.
            vipgate_log($hook, $request, 'bridge unreachable, heartbeat not spooled: ' . $result['error'] . $opened);
            vipgate_report_backlog(vipgate_pdo(), $config, $result['error'], time());
            return;
        }
        try {
            if ($kept !== '') {
                throw new RuntimeException($kept);
            }
            vipgate_spool($event, $result['error']);
            vipgate_log($hook, $request, 'bridge unreachable, event spooled: ' . $result['error'] . $opened);
        } catch (\Throwable $e) {
            vipgate_log($hook, $request, 'bridge unreachable (' . $result['error']
                . ') and the event could not be spooled, it is lost: ' . $e->getMessage());
            vipgate_activity('lost', 'a ' . $hook . ' event (' . $event['id'] . ') is lost: the '
                . 'bridge did not take it (' . vipgate_short($result['error']) . ') and it could '
                . 'not be kept in mod_vipgate_spool (' . vipgate_short($e->getMessage()) . ')');
            return;
        }
        vipgate_report_backlog(vipgate_pdo(), $config, $result['error'], time());
    } catch (\Throwable $e) {
        vipgate_log($hook, '', 'unexpected error: ' . get_class($e) . ': ' . $e->getMessage());
    }
}

/**
 * Remember since when the heartbeat fails (the bridge may be down with nothing spooled);
 * forgotten once it gets through. Never throws.
 */
function vipgate_note_heartbeat($delivered)
{
    try {
        $pdo = vipgate_pdo();
        if ($delivered) {
            if (vipgate_state_get($pdo, 'heartbeat_failing_since') !== null) {
                vipgate_sql($pdo, 'DELETE FROM mod_vipgate_state WHERE name = ?', ['heartbeat_failing_since']);
            }
        } elseif (vipgate_state_get($pdo, 'heartbeat_failing_since') === null) {
            vipgate_state_claim($pdo, 'heartbeat_failing_since', time(), PHP_INT_MAX >> 1);
        }
    } catch (\Throwable $e) {
        vipgate_log('AfterCronJob', '', 'cannot note the heartbeat: ' . $e->getMessage());
    }
}

/**
 * The cron's flush: every waiting row (up to flush_max_rows rows, flush_max_seconds seconds),
 * in batches, tried even while the breaker is open; the first batch the bridge does not take
 * stops it. Rejected events older than 30 days are deleted. Returns vipgate_deliver's answer
 * (['tried' => false, 'failed' => false] when there is no outbox yet).
 */
function vipgate_flush_spool($config)
{
    $pdo = vipgate_pdo();
    if (!vipgate_spool_table_exists($pdo)) {
        return ['tried' => false, 'failed' => false];
    }
    vipgate_spool_ensure($pdo);
    vipgate_sql($pdo, 'DELETE FROM mod_vipgate_spool WHERE rejected_at IS NOT NULL AND rejected_at < ?',
        [vipgate_sql_time(time() - VIPGATE_REJECTED_KEEP)]);
    return vipgate_deliver($config, (int) $config['flush_max_rows'],
        max(1, (float) $config['flush_max_seconds']), true);
}

/**
 * What the heartbeat tells the bridge about rejected events: how many are kept (30 days) and
 * the newest few (webhook id, hook, when, why). Empty when there are none, so a bridge that
 * knows no such vars still takes the heartbeat.
 */
function vipgate_rejected_report()
{
    $pdo = vipgate_pdo();
    if (!vipgate_spool_table_exists($pdo)) {
        return [];
    }
    vipgate_spool_ensure($pdo);
    $count = (int) vipgate_sql($pdo, 'SELECT COUNT(*) FROM mod_vipgate_spool WHERE rejected_at IS NOT NULL')
        ->fetchColumn();
    if ($count === 0) {
        return [];
    }
    $rows = vipgate_sql($pdo, 'SELECT webhook_id, hook, rejected_at, last_error FROM mod_vipgate_spool'
        . ' WHERE rejected_at IS NOT NULL ORDER BY rejected_at DESC, id DESC LIMIT ?',
        [VIPGATE_REJECTED_LISTED])->fetchAll(PDO::FETCH_ASSOC);
    $recent = [];
    foreach ($rows as $row) {
        $recent[] = [
            'webhook_id' => (string) $row['webhook_id'],
            'hook' => (string) $row['hook'],
            'rejected_at' => gmdate('c', (int) strtotime($row['rejected_at'] . ' UTC')),
            'reason' => substr((string) $row['last_error'], 0, 500),
        ];
    }
    return ['rejected_count' => $count, 'rejected_recent' => $recent];
}

/**
 * The outbox as the addon's page shows it: events waiting to be sent, rejected ones kept, and
 * when the oldest waiting one was written (UTC, or null). All 0 when there is no table yet.
 */
function vipgate_outbox_figures($pdo)
{
    $figures = ['waiting' => 0, 'rejected' => 0, 'oldest' => null];
    if (!vipgate_spool_table_exists($pdo)) {
        return $figures;
    }
    vipgate_spool_ensure($pdo);
    $row = vipgate_sql($pdo, 'SELECT SUM(CASE WHEN rejected_at IS NULL THEN 1 ELSE 0 END),'
        . ' SUM(CASE WHEN rejected_at IS NULL THEN 0 ELSE 1 END),'
        . ' MIN(CASE WHEN rejected_at IS NULL THEN created_at END) FROM mod_vipgate_spool')->fetch(PDO::FETCH_NUM);
    return ['waiting' => (int) $row[0], 'rejected' => (int) $row[1],
        'oldest' => $row[2] === null ? null : (string) $row[2]];
}

/**
 * Whether the bridge answers (a GET of its /healthz within the ordinary timeout) and the
 * version it reports: ['error' => '' or why it did not answer, 'status' => HTTP status,
 * 'version' => '' when not reported].
 */
function vipgate_bridge_health($config)
{
    $base = preg_replace('#/hooks/whmcs/?$#', '', $config['url']);
    $answer = vipgate_get($config, $base . '/healthz');
    $health = $answer['error'] === '' ? json_decode($answer['body'], true) : null;
    $version = is_array($health) && isset($health['version']) && is_string($health['version'])
        ? $health['version'] : '';
    return ['error' => $answer['error'], 'status' => $answer['status'], 'version' => $version];
}

/**
 * AfterCronJob (every cron run): flush the outbox, then send the heartbeat, which carries the
 * report of rejected events. When the flush found the bridge not taking events, the heartbeat
 * is not tried as well (the cron is not kept waiting twice).
 */
function vipgate_after_cron_job($vars)
{
    $report = [];
    $flush = ['tried' => false, 'failed' => false];
    try {
        $config = vipgate_settings();
        if ($config !== null) {
            $flush = vipgate_flush_spool($config);
            $report = vipgate_rejected_report();
        }
    } catch (\Throwable $e) {
        vipgate_log('flush', '', 'cannot flush the spool: ' . get_class($e) . ': ' . $e->getMessage());
    }
    if ($flush['failed']) {
        vipgate_note_heartbeat(false);
        vipgate_log('AfterCronJob', '', 'the flush found the bridge not taking events: heartbeat not sent');
        return;
    }
    vipgate_forward('AfterCronJob', $report);
}

/**
 * Why a synchronous answer cannot be used ('' when it can): it must carry the bridge's
 * signature over its exact body, for the webhook id this request was sent with, made with
 * this stub's secret less than five minutes ago.
 */
function vipgate_answer_problem($config, $id, $result)
{
    $headers = $result['headers'];
    foreach (['webhook-id', 'webhook-timestamp', 'webhook-signature'] as $name) {
        if (!isset($headers[$name]) || $headers[$name] === '') {
            return 'the answer is not signed (no ' . $name . ' header)';
        }
    }
    if (!hash_equals($id, $headers['webhook-id'])) {
        return 'the answer is signed for another request';
    }
    $timestamp = $headers['webhook-timestamp'];
    if (!ctype_digit($timestamp) || abs(time() - (int) $timestamp) > 300) {
        return 'the answer\'s signature is not from the last five minutes';
    }
    $expected = vipgate_signature($config['secret'], $id, $timestamp, $result['body']);
    foreach (explode(' ', $headers['webhook-signature']) as $offered) {
        if (hash_equals($expected, $offered)) {
            return '';
        }
    }
    return 'the answer\'s signature does not match';
}

/**
 * Ask the bridge a synchronous question: the decoded, verified JSON answer, or null when
 * there is no usable answer in time (logged once, with what WHMCS does instead: $instead).
 */
function vipgate_ask($config, $hook, $vars, $instead, $timeoutMs = null)
{
    $event = null;
    try {
        $event = vipgate_event($hook, $vars);
        $until = vipgate_breaker_until();
        if (vipgate_breaker_is_open($until, time())) {
            $problem = 'not asked: the breaker is open after a delivery the bridge did not take';
            $result = ['outcome' => 'breaker', 'status' => 0, 'body' => ''];
        } else {
            $result = vipgate_post($config, $event['id'], $event['body'],
                $timeoutMs === null ? vipgate_timeout_ms($config, $hook) : $timeoutMs);
            $problem = $result['outcome'] === 'ok' ? vipgate_answer_problem($config, $event['id'], $result)
                : $result['error'];
            if ($result['outcome'] === 'retry') {
                $problem .= vipgate_breaker_open($config, $result['error']);
            } elseif ($result['outcome'] === 'ok') {
                vipgate_breaker_close($config, $until);
            }
        }
        $answer = $problem === '' ? json_decode($result['body'], true) : null;
        if ($problem === '' && is_array($answer)) {
            return $answer;
        }
        if ($problem === '') {
            $problem = 'HTTP ' . $result['status'] . ' with a body that is not a JSON object';
        }
        vipgate_log($hook, vipgate_log_request($config, $event),
            'no answer from the bridge (' . $problem . '), ' . $instead);
        if ($hook === 'TicketOpenValidation') {
            vipgate_activity('gate', 'the ticket gate got no usable answer from the bridge at '
                . vipgate_shown_url($config['url']) . ' (' . vipgate_short($problem) . '): '
                . $instead . ' without the check (fail_open ' . ($config['fail_open'] ? 'on' : 'off')
                . ' in ' . $config['source'] . ')');
        }
    } catch (\Throwable $e) {
        vipgate_log($hook, $event === null ? '' : vipgate_log_request($config, $event),
            'unexpected error: ' . get_class($e) . ': ' . $e->getMessage() . '; ' . $instead);
    }
    return null;
}

/**
 * The language a client reads, as a WHMCS language name (portuguese-br, english): the client
 * area's session ($_SESSION['Language']), else the client's own (tblclients.language), else
 * WHMCS's default (tblconfiguration Language); '' when none is known. WHMCS's database is
 * read only when the session names none; a read that fails is passed over (the bridge then
 * takes the client's language it knows, else its own default).
 */
function vipgate_client_language($clientId)
{
    if (isset($_SESSION['Language']) && is_string($_SESSION['Language'])
        && trim($_SESSION['Language']) !== '') {
        return substr(trim($_SESSION['Language']), 0, 64);
    }
    $questions = [['SELECT language FROM tblclients WHERE id = ?', [$clientId]],
        ['SELECT value FROM tblconfiguration WHERE setting = ?', ['Language']]];
    foreach ($clientId > 0 ? $questions : array_slice($questions, 1) as $question) {
        try {
            $row = vipgate_sql(vipgate_pdo(), $question[0], $question[1])->fetch(PDO::FETCH_NUM);
            if ($row && is_string($row[0]) && trim($row[0]) !== '') {
                return substr(trim($row[0]), 0, 64);
            }
        } catch (\Throwable $e) {
            // not known from there: the next source, else the bridge's
        }
    }
    return '';
}

/**
 * The stub's own refusal of a ticket (fail_open off and no answer from the bridge), in the
 * client's WHMCS language: Portuguese for portuguese-br and portuguese-pt, English for any
 * other (the stub has no translations beyond these).
 */
function vipgate_unavailable_message($language)
{
    $portuguese = 'A abertura de chamados está temporariamente indisponível. Tente novamente em'
        . ' alguns minutos.';
    $messages = [
        'english' => 'Support tickets are temporarily unavailable. Please try again in a few minutes.',
        'portuguese-br' => $portuguese,
        'portuguese-pt' => $portuguese,
    ];
    $name = strtolower(trim((string) $language));
    return isset($messages[$name]) ? $messages[$name] : $messages['english'];
}

/**
 * TicketOpenValidation, answered by the bridge at once: the first error it gives blocks the
 * ticket. The question carries the language the client reads (WHMCS passes none to this
 * hook), in which the bridge writes a refusal. Without an answer in time the ticket is
 * allowed (fail_open) or refused with a generic message in that language. Never spooled.
 */
function vipgate_ticket_open_validation($vars)
{
    $hook = 'TicketOpenValidation';
    $config = null;
    $language = '';
    try {
        $config = vipgate_settings();
        if ($config === null) {
            return '';
        }
        $vars = is_array($vars) ? $vars : [];
        $language = vipgate_client_language(isset($vars['clientId']) ? vipgate_id($vars['clientId']) : 0);
        if ($language !== '') {
            $vars['language'] = $language;
        }
        $instead = 'ticket ' . ($config['fail_open'] ? 'allowed' : 'refused');
        $answer = vipgate_ask($config, $hook, $vars, $instead);
        if ($answer !== null && isset($answer['errors']) && is_array($answer['errors'])) {
            foreach ($answer['errors'] as $error) {
                if (is_string($error) && $error !== '') {
                    return $error;
                }
            }
            return '';
        }
        if ($answer !== null) {
            vipgate_log($hook, '', 'the bridge answered without an errors list, ' . $instead);
        }
    } catch (\Throwable $e) {
        vipgate_log($hook, '', 'unexpected error: ' . get_class($e) . ': ' . $e->getMessage());
    }
    if ($config === null || $config['fail_open']) {
        return '';
    }
    return vipgate_unavailable_message($language);
}

/** A WHMCS id (int or digit string) as int; 0 for anything else. */
function vipgate_id($value)
{
    if (is_int($value)) {
        return max(0, $value);
    }
    return is_string($value) && ctype_digit($value) ? (int) $value : 0;
}

/**
 * The logged-in client of a client-area page: from the page's variables (clientsdetails,
 * or WHMCS 8's client object), else the session; 0 when nobody is logged in.
 */
function vipgate_client_id($vars)
{
    if (isset($vars['clientsdetails']) && is_array($vars['clientsdetails'])) {
        foreach (['userid', 'id'] as $key) {
            if (isset($vars['clientsdetails'][$key]) && vipgate_id($vars['clientsdetails'][$key]) > 0) {
                return vipgate_id($vars['clientsdetails'][$key]);
            }
        }
    }
    if (isset($vars['client']) && is_object($vars['client']) && isset($vars['client']->id)) {
        return vipgate_id($vars['client']->id);
    }
    return isset($_SESSION['uid']) ? vipgate_id($_SESSION['uid']) : 0;
}

/** The language a client-area page is shown in (a WHMCS name such as portuguese-br). */
function vipgate_page_language($vars)
{
    if (isset($vars['language']) && is_string($vars['language']) && $vars['language'] !== '') {
        return $vars['language'];
    }
    return isset($_SESSION['Language']) && is_string($_SESSION['Language']) ? $_SESSION['Language'] : '';
}

/** The client a ticket belongs to, from WHMCS's own table (0 for a guest or on error). */
function vipgate_ticket_client($ticketId)
{
    try {
        $row = vipgate_sql(vipgate_pdo(), 'SELECT userid FROM tbltickets WHERE id = ?', [$ticketId])
            ->fetch(PDO::FETCH_NUM);
        return $row ? vipgate_id((string) $row[0]) : 0;
    } catch (\Throwable $e) {
        vipgate_log('AdminAreaViewTicketPage', '', 'cannot read the ticket\'s client: ' . $e->getMessage());
        return 0;
    }
}

/** The HTML of a page hook's answer ('' when there is none); $timeoutMs: null = the hook's. */
function vipgate_page_html($hook, $vars, $timeoutMs = null)
{
    try {
        $config = vipgate_settings();
        $answer = $config === null ? null : vipgate_ask($config, $hook, $vars, 'nothing shown', $timeoutMs);
        return $answer !== null && isset($answer['html']) && is_string($answer['html']) ? $answer['html'] : '';
    } catch (\Throwable $e) {
        vipgate_log($hook, '', 'unexpected error: ' . get_class($e) . ': ' . $e->getMessage());
        return '';
    }
}

/** AdminAreaClientSummaryPage: vipgate's panel on the client summary. */
function vipgate_admin_client_summary($vars)
{
    $clientId = is_array($vars) && isset($vars['userid']) ? vipgate_id($vars['userid']) : 0;
    return $clientId > 0 ? vipgate_page_html('AdminAreaClientSummaryPage', ['userid' => $clientId]) : '';
}

/** AdminAreaViewTicketPage: a one-line badge with the standing of the ticket's client. */
function vipgate_admin_view_ticket($vars)
{
    $ticketId = is_array($vars) && isset($vars['ticketid']) ? vipgate_id($vars['ticketid']) : 0;
    if ($ticketId <= 0) {
        return '';
    }
    return vipgate_page_html('AdminAreaViewTicketPage',
        ['ticketid' => $ticketId, 'userid' => vipgate_ticket_client($ticketId)]);
}

/**
 * ClientAreaPageSubmitTicket: for a client the ticket gate would block, only the departments
 * the bridge names (billing) stay on the page, with `vipgate_notice` saying why (show it in
 * the template with {$vipgate_notice nofilter}). Anyone else: the page is left as it is.
 */
function vipgate_client_submit_ticket($vars)
{
    $hook = 'ClientAreaPageSubmitTicket';
    try {
        $vars = is_array($vars) ? $vars : [];
        $clientId = vipgate_client_id($vars);
        $config = $clientId > 0 ? vipgate_settings() : null;
        if ($config === null) {
            return [];
        }
        $answer = vipgate_ask($config, $hook, ['userid' => $clientId, 'language' => vipgate_page_language($vars)],
            'the page is left as it is');
        if ($answer === null || !isset($answer['departments']) || !is_array($answer['departments'])) {
            return [];
        }
        $allowed = array_map('intval', $answer['departments']);
        $departments = [];
        $offered = isset($vars['departments']) && is_array($vars['departments']) ? $vars['departments'] : [];
        foreach ($offered as $department) {
            $id = 0;
            if (is_array($department) && isset($department['id'])) {
                $id = vipgate_id($department['id']);
            } elseif (is_object($department) && isset($department->id)) {
                $id = vipgate_id($department->id);
            }
            if (in_array($id, $allowed, true)) {
                $departments[] = $department;
            }
        }
        $returned = [
            'departments' => $departments,
            'vipgate_notice' => isset($answer['html']) && is_string($answer['html']) ? $answer['html'] : '',
            'vipgate_blocked' => true,
        ];
        $chosen = isset($vars['deptid']) ? vipgate_id($vars['deptid']) : 0;
        if ($chosen > 0 && !in_array($chosen, $allowed, true) && $allowed) {
            $returned['deptid'] = $allowed[0];
        }
        return $returned;
    } catch (\Throwable $e) {
        vipgate_log($hook, '', 'unexpected error: ' . get_class($e) . ': ' . $e->getMessage());
        return [];
    }
}

/** Whether this request is the banner's trust unlock form, posted to the client-area home. */
function vipgate_trust_posted()
{
    return isset($_SERVER['REQUEST_METHOD']) && $_SERVER['REQUEST_METHOD'] === 'POST'
        && isset($_POST['vipgate_action']) && $_POST['vipgate_action'] === 'trust_unlock';
}

/**
 * The banner's unlock form carries WHMCS's own CSRF token: the bridge leaves a marked empty
 * field, filled here from the page's `token` variable (WHMCS's token never leaves WHMCS), or
 * removed when the page has none.
 */
function vipgate_csrf_field($html, $vars)
{
    $marker = '<input type="hidden" name="token" value="" data-vipgate-csrf>';
    if (strpos($html, $marker) === false) {
        return $html;
    }
    $token = isset($vars['token']) && is_string($vars['token']) ? $vars['token'] : '';
    $field = $token === '' ? ''
        : '<input type="hidden" name="token" value="' . htmlspecialchars($token, ENT_QUOTES, 'UTF-8') . '">';
    return str_replace($marker, $field, $html);
}

/**
 * ClientAreaHomepage: the overdue banner (the bridge answers '' when it is off). When the
 * client posted the banner's trust unlock form, the bridge is asked to unlock with the form's
 * token (checked by the bridge: made for this client and day with the shared secret), for the
 * client logged in (the session's, never a form field), waiting up to VIPGATE_TRUST_TIMEOUT_MS;
 * the banner it answers says how it went.
 */
function vipgate_client_homepage($vars)
{
    $vars = is_array($vars) ? $vars : [];
    $clientId = vipgate_client_id($vars);
    if ($clientId <= 0) {
        return '';
    }
    $question = ['userid' => $clientId, 'language' => vipgate_page_language($vars)];
    $timeoutMs = null;
    if (vipgate_trust_posted()) {
        $token = isset($_POST['vipgate_token']) && is_string($_POST['vipgate_token']) ? $_POST['vipgate_token'] : '';
        $question['vipgate_action'] = 'trust_unlock';
        $question['vipgate_token'] = substr($token, 0, 100);
        $timeoutMs = VIPGATE_TRUST_TIMEOUT_MS;
    }
    return vipgate_csrf_field(vipgate_page_html('ClientAreaHomepage', $question, $timeoutMs), $vars);
}

/** The hooks forwarded without waiting for an answer (all but those vipgate_register_hooks() names). */
function vipgate_async_hooks()
{
    return array_values(array_diff(array_keys(vipgate_whitelist()), array_merge(vipgate_sync_hooks(), ['AfterCronJob'])));
}

/**
 * What a loader calls: notes its install and, the first time in the process, registers the
 * hooks. Both installs present (a move to the addon not finished) still register each hook
 * once; vipgate_settings() decides whose settings are used.
 */
function vipgate_register_hooks($install, $settingsFile = null)
{
    $first = vipgate_installs() === [];
    vipgate_installs($install, $settingsFile);
    if (!$first) {
        return;
    }
    foreach (vipgate_async_hooks() as $hook) {
        add_hook($hook, 1, function ($vars) use ($hook) {
            vipgate_forward($hook, $vars);
        });
    }
    add_hook('TicketOpenValidation', 1, 'vipgate_ticket_open_validation');
    add_hook('AdminAreaClientSummaryPage', 1, 'vipgate_admin_client_summary');
    add_hook('AdminAreaViewTicketPage', 1, 'vipgate_admin_view_ticket');
    add_hook('ClientAreaPageSubmitTicket', 1, 'vipgate_client_submit_ticket');
    add_hook('ClientAreaHomepage', 1, 'vipgate_client_homepage');
    add_hook('AfterCronJob', 1, 'vipgate_after_cron_job');
}
