<?php
/**
 * A stand-in for the parts of WHMCS the vipgate stub touches (sandbox, demo, tests, benchmarks):
 * the WHMCS constant, add_hook, logModuleCall and Capsule::connection()->getPdo().
 *
 * Environment:
 *   VIPGATE_SANDBOX_LOG           file that logModuleCall appends JSON lines to
 *   VIPGATE_SANDBOX_PDO_DSN       PDO DSN of the "WHMCS database" (sqlite:/path or mysql:...)
 *   VIPGATE_SANDBOX_PDO_USER, VIPGATE_SANDBOX_PDO_PASSWORD   for a mysql DSN
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

namespace {
    define('WHMCS', true);

    $GLOBALS['vipgate_test_hooks'] = [];

    function add_hook($hookName, $priority, $function, $rollback = '')
    {
        $GLOBALS['vipgate_test_hooks'][$hookName][] = ['priority' => $priority, 'function' => $function];
    }

    function logModuleCall($module, $action, $request, $response, $processed = '', $replace = [])
    {
        $path = getenv('VIPGATE_SANDBOX_LOG');
        if (!$path) {
            return;
        }
        $line = json_encode(compact('module', 'action', 'request', 'response', 'processed', 'replace'),
            JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE);
        file_put_contents($path, $line . "\n", FILE_APPEND | LOCK_EX);
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
