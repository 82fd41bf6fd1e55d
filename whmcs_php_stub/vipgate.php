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
 * - Never throws into WHMCS; failures go to the module log (logModuleCall), never the secret.
 * - When the bridge is unreachable (or answers 5xx, 429, 401, 408) the event is kept in the
 *   table mod_vipgate_spool of the WHMCS database and sent again, oldest first, with the same
 *   webhook id and a fresh signature, on AfterCronJob.
 * - TicketOpenValidation is answered by the bridge at once; if it does not answer in time the
 *   ticket is allowed (fail_open) or refused with a short generic message.
 *
 * Installed into includes/hooks/ by `vipgate install-stub`, which also writes the settings
 * file _vipgate_config.php beside it (the leading underscore keeps WHMCS from loading it as
 * a hook file). Runs on PHP 7.4 to 8.3 with the curl extension; no Composer.
 */

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

use WHMCS\Database\Capsule;

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
        'fail_open' => true,
        'flush_max_rows' => 500,
        'flush_max_seconds' => 20,
    ];
}

/** The settings, or null (logged) when the settings file is missing or unusable. */
function vipgate_config()
{
    $path = __DIR__ . '/_vipgate_config.php';
    if (!is_file($path)) {
        vipgate_log('config', $path, 'settings file is missing; run vipgate install-stub');
        return null;
    }
    $loaded = include $path;
    if (!is_array($loaded) || !isset($loaded['url'], $loaded['secret'])
        || !is_string($loaded['url']) || !preg_match('#^https?://[^/\s]+#i', $loaded['url'])) {
        vipgate_log('config', $path, 'settings file must return an array with an http(s) url '
            . 'and a secret; run vipgate install-stub');
        return null;
    }
    return array_merge(vipgate_defaults(), $loaded);
}

/**
 * Per forwarded hook, the top-level $vars keys sent to the bridge. It must equal the bridge's
 * bridge.payloads.whitelist() (a test compares the two).
 */
function vipgate_whitelist()
{
    $invoice = ['invoiceid'];
    $service = ['pid', 'serviceid', 'userid'];
    $ticket = ['deptid', 'priority', 'ticketid', 'ticketmask', 'userid'];
    return [
        'InvoiceCreated' => ['invoiceid', 'source', 'status', 'user'],
        'InvoicePaid' => $invoice,
        'InvoiceUnpaid' => $invoice,
        'InvoiceCancelled' => $invoice,
        'InvoiceRefunded' => $invoice,
        'AddInvoicePayment' => $invoice,
        'AfterModuleSuspend' => $service,
        'AfterModuleUnsuspend' => $service,
        'ClientAdd' => ['client_id', 'groupid', 'user_id'],
        'ClientEdit' => ['groupid', 'language', 'olddata', 'status', 'userid'],
        'ClientClose' => ['userid'],
        'TicketOpen' => $ticket,
        'TicketUserReply' => array_merge($ticket, ['replyid', 'status']),
        'TicketPriorityChange' => ['priority', 'ticketid'],
        'TicketOpenValidation' => ['clientId', 'contactId', 'departmentId', 'isAdmin', 'priority'],
        'PreCronJob' => [],
        'AfterCronJob' => [],
        'DailyCronJob' => [],
    ];
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
 * The whitelisted part of a hook's $vars. Module hooks carry the service in $vars['params']
 * (with passwords and server credentials, never sent); ClientEdit's olddata is reduced to the
 * previous groupid and status.
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
    $key = false;
    if (is_string($secret) && strncmp($secret, 'whsec_', 6) === 0) {
        $key = base64_decode(substr($secret, 6), true);
    }
    if ($key === false || strlen($key) < 24) {
        throw new RuntimeException('the secret in _vipgate_config.php is not a whsec_ secret');
    }
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
    return min(2000, max(100, (int) $config['timeout_ms']));
}

/**
 * POST one event, signed with the time of this attempt. Returns ['outcome' => 'ok' | 'retry'
 * | 'permanent', 'status' => HTTP status or 0, 'error' => text, 'body' => answer].
 */
function vipgate_post($config, $id, $body, $timeoutMs)
{
    $result = ['outcome' => 'retry', 'status' => 0, 'error' => '', 'body' => ''];
    if (!function_exists('curl_init')) {
        $result['error'] = 'the PHP curl extension is not installed';
        return $result;
    }
    try {
        $timestamp = time();
        $headers = [
            'Content-Type: application/json',
            'Expect:',
            'User-Agent: vipgate-whmcs-stub/1',
            'webhook-id: ' . $id,
            'webhook-timestamp: ' . $timestamp,
            'webhook-signature: ' . vipgate_signature($config['secret'], $id, $timestamp, $body),
        ];
    } catch (\Throwable $e) {
        $result['error'] = $e->getMessage();
        return $result;
    }
    $curl = curl_init($config['url']);
    if ($curl === false) {
        $result['error'] = 'curl_init failed';
        return $result;
    }
    curl_setopt_array($curl, [
        CURLOPT_POST => true,
        CURLOPT_POSTFIELDS => $body,
        CURLOPT_HTTPHEADER => $headers,
        CURLOPT_RETURNTRANSFER => true,
        CURLOPT_FOLLOWLOCATION => false,
        CURLOPT_CONNECTTIMEOUT_MS => min(1000, max(100, (int) $config['connect_timeout_ms']), $timeoutMs),
        CURLOPT_TIMEOUT_MS => $timeoutMs,
        CURLOPT_NOSIGNAL => true,
        CURLOPT_SSL_VERIFYPEER => true,
        CURLOPT_SSL_VERIFYHOST => 2,
    ]);
    $answer = curl_exec($curl);
    $errno = curl_errno($curl);
    $result['error'] = $errno ? 'curl error ' . $errno . ': ' . curl_error($curl) : '';
    $result['status'] = (int) curl_getinfo($curl, CURLINFO_RESPONSE_CODE);
    if (PHP_VERSION_ID < 80000) {
        curl_close($curl);
    }
    $result['body'] = is_string($answer) ? $answer : '';
    $status = $result['status'];
    if (!$errno && $status >= 200 && $status < 300) {
        $result['outcome'] = 'ok';
    } elseif (!$errno && $status >= 400 && $status < 500 && !in_array($status, [401, 408, 429], true)) {
        $result['outcome'] = 'permanent';
    }
    if (!$errno && $result['outcome'] !== 'ok') {
        $result['error'] = 'HTTP ' . $status . ': ' . substr($result['body'], 0, 500);
    }
    return $result;
}

/** Write to the WHMCS module log; never throws. */
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

/** What is logged about an event: never the secret, nor credentials in the URL. */
function vipgate_log_request($config, $event)
{
    return [
        'url' => preg_replace('#//[^/@]*@#', '//', (string) $config['url']),
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
        $statement->bindValue($i + 1, $value, is_int($value) ? PDO::PARAM_INT : PDO::PARAM_STR);
    }
    if ($statement->execute() === false) {
        throw new RuntimeException('cannot execute: ' . implode(' ', $statement->errorInfo()));
    }
    return $statement;
}

function vipgate_spool_table_exists($pdo)
{
    try {
        vipgate_sql($pdo, 'SELECT COUNT(*) FROM mod_vipgate_spool WHERE 1 = 0');
        return true;
    } catch (\Throwable $e) {
        return false;
    }
}

function vipgate_spool_create($pdo)
{
    $driver = $pdo->getAttribute(PDO::ATTR_DRIVER_NAME);
    if ($driver === 'sqlite') {
        $sql = 'CREATE TABLE IF NOT EXISTS mod_vipgate_spool ('
            . ' id INTEGER PRIMARY KEY AUTOINCREMENT,'
            . ' webhook_id VARCHAR(64) NOT NULL UNIQUE,'
            . ' hook VARCHAR(64) NOT NULL,'
            . ' body TEXT NOT NULL,'
            . ' created_at DATETIME NOT NULL,'
            . ' attempts INTEGER NOT NULL DEFAULT 0,'
            . ' last_error TEXT NULL)';
    } elseif ($driver === 'mysql') {
        $sql = 'CREATE TABLE IF NOT EXISTS mod_vipgate_spool ('
            . ' id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,'
            . ' webhook_id VARCHAR(64) NOT NULL,'
            . ' hook VARCHAR(64) NOT NULL,'
            . ' body MEDIUMTEXT NOT NULL,'
            . ' created_at DATETIME NOT NULL,'
            . ' attempts INT UNSIGNED NOT NULL DEFAULT 0,'
            . ' last_error TEXT NULL,'
            . ' UNIQUE KEY uq_mod_vipgate_spool_webhook_id (webhook_id)'
            . ') ENGINE=InnoDB DEFAULT CHARSET=utf8mb4';
    } else {
        throw new RuntimeException('cannot create mod_vipgate_spool on a ' . $driver . ' database');
    }
    vipgate_sql($pdo, $sql);
}

/** Keep an event for the next AfterCronJob; the table is created on first use. */
function vipgate_spool($event, $error)
{
    $pdo = vipgate_pdo();
    $sql = 'INSERT INTO mod_vipgate_spool (webhook_id, hook, body, created_at, attempts, last_error)'
        . ' VALUES (?, ?, ?, ?, ?, ?)';
    $row = [$event['id'], $event['hook'], $event['body'], gmdate('Y-m-d H:i:s'), 1, substr($error, 0, 1000)];
    try {
        vipgate_sql($pdo, $sql, $row);
    } catch (\Throwable $e) {
        if (vipgate_spool_table_exists($pdo)) {
            throw $e;
        }
        vipgate_spool_create($pdo);
        vipgate_sql($pdo, $sql, $row);
    }
}

/** Forward one asynchronous hook event; spool it when the bridge cannot take it now. */
function vipgate_forward($hook, $vars)
{
    try {
        $config = vipgate_config();
        if ($config === null) {
            return;
        }
        $event = vipgate_event($hook, $vars);
        $result = vipgate_post($config, $event['id'], $event['body'], vipgate_timeout_ms($config, $hook));
        if ($result['outcome'] === 'ok') {
            return;
        }
        $request = vipgate_log_request($config, $event);
        if ($result['outcome'] === 'permanent') {
            vipgate_log($hook, $request, 'bridge rejected the event, not retried: ' . $result['error']);
            return;
        }
        if ($hook === 'AfterCronJob') {
            // A heartbeat every cron run, with nothing to reconcile: not worth a spool row.
            vipgate_log($hook, $request, 'bridge unreachable, heartbeat not spooled: ' . $result['error']);
            return;
        }
        try {
            vipgate_spool($event, $result['error']);
            vipgate_log($hook, $request, 'bridge unreachable, event spooled: ' . $result['error']);
        } catch (\Throwable $e) {
            vipgate_log($hook, $request, 'bridge unreachable (' . $result['error']
                . ') and the event could not be spooled, it is lost: ' . $e->getMessage());
        }
    } catch (\Throwable $e) {
        vipgate_log($hook, '', 'unexpected error: ' . get_class($e) . ': ' . $e->getMessage());
    }
}

/**
 * Send spooled events again, oldest first, each with its own webhook id and body and a fresh
 * signature. Stops at the first retryable failure (the bridge is still down) and after
 * flush_max_rows rows or flush_max_seconds seconds.
 */
function vipgate_flush_spool($config)
{
    $pdo = vipgate_pdo();
    if (!vipgate_spool_table_exists($pdo)) {
        return;
    }
    $deadline = microtime(true) + max(1, (float) $config['flush_max_seconds']);
    $left = max(0, (int) $config['flush_max_rows']);
    $afterId = 0;
    while ($left > 0 && microtime(true) < $deadline) {
        $rows = vipgate_sql(
            $pdo,
            'SELECT id, webhook_id, hook, body FROM mod_vipgate_spool WHERE id > ? ORDER BY id LIMIT ?',
            [$afterId, min(100, $left)]
        )->fetchAll(PDO::FETCH_ASSOC);
        if (!$rows) {
            return;
        }
        foreach ($rows as $row) {
            if ($left <= 0 || microtime(true) >= $deadline) {
                return;
            }
            $left--;
            $afterId = (int) $row['id'];
            $event = ['id' => $row['webhook_id'], 'hook' => $row['hook'], 'body' => $row['body']];
            // The ordinary short timeout, also for a spooled PreCronJob: its cron has passed.
            $timeoutMs = vipgate_timeout_ms($config, 'AfterCronJob');
            $result = vipgate_post($config, $event['id'], $event['body'], $timeoutMs);
            if ($result['outcome'] === 'retry') {
                vipgate_sql(
                    $pdo,
                    'UPDATE mod_vipgate_spool SET attempts = attempts + 1, last_error = ? WHERE id = ?',
                    [substr($result['error'], 0, 1000), $afterId]
                );
                vipgate_log('flush', vipgate_log_request($config, $event),
                    'bridge still unreachable, flush stopped: ' . $result['error']);
                return;
            }
            if ($result['outcome'] === 'permanent') {
                vipgate_log('flush', vipgate_log_request($config, $event),
                    'bridge rejected a spooled event, dropped: ' . $result['error']);
            }
            vipgate_sql($pdo, 'DELETE FROM mod_vipgate_spool WHERE id = ?', [$afterId]);
        }
    }
}

/** AfterCronJob (every cron run): flush the spool, then forward the event itself. */
function vipgate_after_cron_job($vars)
{
    try {
        $config = vipgate_config();
        if ($config !== null) {
            vipgate_flush_spool($config);
        }
    } catch (\Throwable $e) {
        vipgate_log('flush', '', 'cannot flush the spool: ' . get_class($e) . ': ' . $e->getMessage());
    }
    vipgate_forward('AfterCronJob', $vars);
}

/**
 * TicketOpenValidation, answered by the bridge at once: the first error it gives blocks the
 * ticket. Without an answer in time the ticket is allowed (fail_open) or refused with a
 * generic message. Never spooled.
 */
function vipgate_ticket_open_validation($vars)
{
    $hook = 'TicketOpenValidation';
    $config = null;
    try {
        $config = vipgate_config();
        if ($config === null) {
            return '';
        }
        $event = vipgate_event($hook, $vars);
        $result = vipgate_post($config, $event['id'], $event['body'], vipgate_timeout_ms($config, $hook));
        if ($result['outcome'] === 'ok') {
            $answer = json_decode($result['body'], true);
            if (is_array($answer) && isset($answer['errors']) && is_array($answer['errors'])) {
                foreach ($answer['errors'] as $error) {
                    if (is_string($error) && $error !== '') {
                        return $error;
                    }
                }
                return '';
            }
            $result['error'] = 'HTTP ' . $result['status'] . ' without an errors list';
        }
        vipgate_log($hook, vipgate_log_request($config, $event), 'no answer from the bridge ('
            . $result['error'] . '), ticket ' . ($config['fail_open'] ? 'allowed' : 'refused'));
    } catch (\Throwable $e) {
        vipgate_log($hook, '', 'unexpected error: ' . get_class($e) . ': ' . $e->getMessage());
    }
    if ($config === null || $config['fail_open']) {
        return '';
    }
    return 'Support tickets are temporarily unavailable. Please try again in a few minutes.';
}

/** The hooks forwarded without waiting for an answer (all but the two named below). */
function vipgate_async_hooks()
{
    return array_values(array_diff(array_keys(vipgate_whitelist()), ['TicketOpenValidation', 'AfterCronJob']));
}

foreach (vipgate_async_hooks() as $vipgateHook) {
    add_hook($vipgateHook, 1, function ($vars) use ($vipgateHook) {
        vipgate_forward($vipgateHook, $vars);
    });
}
unset($vipgateHook);
add_hook('TicketOpenValidation', 1, 'vipgate_ticket_open_validation');
add_hook('AfterCronJob', 1, 'vipgate_after_cron_job');
