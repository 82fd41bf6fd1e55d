<?php
/**
 * A stand-in for the parts of WHMCS the vipgate stub touches (sandbox, demo, tests, benchmarks):
 * the WHMCS constant, add_hook, logModuleCall, logActivity, Capsule::connection()->getPdo() and
 * localAPI() with the one command the stub uses, DecryptPassword (developers.whmcs.com:
 * api-reference/decryptpassword: request `password2`, answer `result` and `password`).
 *
 * As in WHMCS 8, logModuleCall writes nothing unless Module Debug Mode is on (tblconfiguration
 * ModuleDebugMode = 'on', off by default), and logActivity always adds a row to tblactivitylog
 * (the System Activity Log).
 *
 * Environment:
 *   VIPGATE_SANDBOX_LOG           file that logModuleCall appends JSON lines to (the module log)
 *   VIPGATE_SANDBOX_MODULE_DEBUG  'on': Module Debug Mode when the database has no
 *                                 tblconfiguration to say (a test's bare database)
 *   VIPGATE_SANDBOX_PDO_DSN       PDO DSN of the "WHMCS database" (sqlite:/path or mysql:...)
 *   VIPGATE_SANDBOX_PDO_USER, VIPGATE_SANDBOX_PDO_PASSWORD   for a mysql DSN
 *   VIPGATE_SANDBOX_ENCRYPT_PASSWORDS  set: addon.php stores an addon's password fields
 *                                 encrypted (vipgate_test_encrypt), as a WHMCS that encrypts
 *                                 them would; unset: as typed. Which one WHMCS does is not in
 *                                 its documentation, so the tests run both
 *   VIPGATE_SANDBOX_FINISH_REQUEST  set: PHP-FPM's fastcgi_finish_request() is defined (tests):
 *                                 it prints the line "finish_request MICROTIME" (the page has
 *                                 gone), then waits VIPGATE_SANDBOX_FINISH_SLEEP seconds if set
 */

namespace WHMCS\Database {
    class Connection
    {
        private static $pdo = null;

        public function getPdo()
        {
            if (self::$pdo === null) {
                $dsn = getenv('VIPGATE_SANDBOX_PDO_DSN');
                if (!$dsn) {
                    throw new \RuntimeException('VIPGATE_SANDBOX_PDO_DSN is not set');
                }
                $user = getenv('VIPGATE_SANDBOX_PDO_USER');
                $password = getenv('VIPGATE_SANDBOX_PDO_PASSWORD');
                // Laravel (and so WHMCS) opens its PDO in exception mode.
                self::$pdo = new \PDO($dsn, $user === false ? null : $user,
                    $password === false ? null : $password,
                    [\PDO::ATTR_ERRMODE => \PDO::ERRMODE_EXCEPTION]);
            }
            return self::$pdo;
        }
    }

    class Capsule
    {
        public static function connection()
        {
            return new Connection();
        }
    }
}

namespace WHMCS\Authentication {
    /** WHMCS 8's CurrentUser: the admin behind the request is the one fire.php was given. */
    class CurrentUser
    {
        public function isAuthenticatedAdmin()
        {
            return isset($GLOBALS['vipgate_test_admin']) && $GLOBALS['vipgate_test_admin'] !== '';
        }

        public function admin()
        {
            if (!$this->isAuthenticatedAdmin()) {
                return null;
            }
            $admin = new \stdClass();
            $admin->username = $GLOBALS['vipgate_test_admin'];
            return $admin;
        }
    }
}

namespace {
    define('WHMCS', true);

    $GLOBALS['vipgate_test_hooks'] = [];

    if (getenv('VIPGATE_SANDBOX_FINISH_REQUEST') && !function_exists('fastcgi_finish_request')) {
        /** PHP-FPM's: the response is complete, the script goes on without the browser. */
        function fastcgi_finish_request()
        {
            fwrite(STDOUT, 'finish_request ' . sprintf('%.6f', microtime(true)) . "\n");
            fflush(STDOUT);
            $sleep = (float) getenv('VIPGATE_SANDBOX_FINISH_SLEEP');
            if ($sleep > 0) {
                usleep((int) ($sleep * 1000000));
            }
            return true;
        }
    }

    function add_hook($hookName, $priority, $function, $rollback = '')
    {
        $GLOBALS['vipgate_test_hooks'][$hookName][] = ['priority' => $priority, 'function' => $function];
    }

    /** tblconfiguration's value of $setting, read once per process as WHMCS does at boot. */
    function vipgate_test_setting($setting)
    {
        static $settings = null;
        if ($settings === null) {
            $settings = [];
            try {
                $pdo = WHMCS\Database\Capsule::connection()->getPdo();
                foreach ($pdo->query('SELECT setting, value FROM tblconfiguration') as $row) {
                    $settings[$row['setting']] = (string) $row['value'];
                }
            } catch (\Throwable $e) {
                // A test's bare database (or none): the environment says.
                $settings = ['ModuleDebugMode' => (string) getenv('VIPGATE_SANDBOX_MODULE_DEBUG')];
            }
        }
        return isset($settings[$setting]) ? $settings[$setting] : '';
    }

    function logModuleCall($module, $action, $request, $response, $processed = '', $replace = [])
    {
        $path = getenv('VIPGATE_SANDBOX_LOG');
        if (!$path || vipgate_test_setting('ModuleDebugMode') !== 'on') {
            return; // WHMCS keeps the module log only in Module Debug Mode
        }
        $line = json_encode(compact('module', 'action', 'request', 'response', 'processed', 'replace'),
            JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE);
        file_put_contents($path, $line . "\n", FILE_APPEND | LOCK_EX);
    }

    /** WHMCS's logActivity: a row in tblactivitylog (made here if the test's database has none). */
    function logActivity($message, $userId = 0)
    {
        $pdo = WHMCS\Database\Capsule::connection()->getPdo();
        $insert = 'INSERT INTO tblactivitylog (date, description, user, userid, ipaddr)'
            . ' VALUES (?, ?, ?, ?, ?)';
        $row = [date('Y-m-d H:i:s'), (string) $message, 'System', (int) $userId, ''];
        try {
            $pdo->prepare($insert)->execute($row);
        } catch (\PDOException $e) {
            $pdo->exec('CREATE TABLE IF NOT EXISTS tblactivitylog (id INTEGER PRIMARY KEY '
                . ($pdo->getAttribute(\PDO::ATTR_DRIVER_NAME) === 'mysql' ? 'AUTO_INCREMENT' : 'AUTOINCREMENT')
                . ', date DATETIME NOT NULL, description TEXT NOT NULL, user TEXT NOT NULL,'
                . ' userid INT NOT NULL DEFAULT 0, user_id INT NOT NULL DEFAULT 0,'
                . ' admin_id INT NOT NULL DEFAULT 0, ipaddr TEXT NOT NULL)');
            $pdo->prepare($insert)->execute($row);
        }
    }

    /**
     * The sandbox's reversible encryption of a stored password (not WHMCS's format, which is
     * not documented): base64, so never a whsec_ value, and only what it made decrypts.
     */
    function vipgate_test_encrypt($plain)
    {
        return base64_encode(vipgate_test_xor('vipgate-sandbox:' . $plain));
    }

    /** The plain text of vipgate_test_encrypt()'s output, or null for anything else. */
    function vipgate_test_decrypt($stored)
    {
        $raw = base64_decode((string) $stored, true);
        $plain = $raw === false ? '' : vipgate_test_xor($raw);
        return strncmp($plain, 'vipgate-sandbox:', 16) === 0 ? substr($plain, 16) : null;
    }

    function vipgate_test_xor($text)
    {
        $key = 'sandbox-cc-encryption-hash';
        $out = '';
        for ($i = 0; $i < strlen($text); $i++) {
            $out .= chr(ord($text[$i]) ^ ord($key[$i % strlen($key)]));
        }
        return $out;
    }

    /**
     * WHMCS's local API, for the commands the stub uses: DecryptPassword (password2 => the
     * stored string; answers result success and password, or result error and message).
     */
    function localAPI($command, $postData = [], $adminUser = '')
    {
        if ($command !== 'DecryptPassword') {
            return ['result' => 'error', 'message' => 'the sandbox\'s localAPI has no ' . $command];
        }
        $plain = vipgate_test_decrypt(isset($postData['password2']) ? $postData['password2'] : '');
        return $plain === null ? ['result' => 'error', 'message' => 'Decryption failed']
            : ['result' => 'success', 'password' => $plain];
    }

    /** Run the functions registered for a hook as WHMCS does: by priority, truthy results kept. */
    function vipgate_test_run_hook($hookName, $vars)
    {
        $hooks = isset($GLOBALS['vipgate_test_hooks'][$hookName]) ? $GLOBALS['vipgate_test_hooks'][$hookName] : [];
        usort($hooks, function ($a, $b) {
            return $a['priority'] - $b['priority'];
        });
        $results = [];
        foreach ($hooks as $hook) {
            $result = call_user_func($hook['function'], $vars);
            if ($result) {
                $results[] = $result;
            }
        }
        return $results;
    }
}
