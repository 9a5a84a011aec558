<?php
// Batch driver for the cipher oracles: reads a JSON list of calls on stdin, writes a JSON list of results.
// Every binary argument and result travels as base64 (keys and plaintexts never appear on the command line).
//   call:   {"op": "<name>", "args": {"<name>_b64": "...", "encoding": "base64"|"hex"}}
//   result: {"ok": "<base64 of the returned bytes>"} or {"error": "<exception message>"}
declare(strict_types=1);
error_reporting(E_ALL);
set_error_handler(static function (int $no, string $message): bool {
    throw new \ErrorException($message, 0, $no);
});

require __DIR__ . '/paykun_encrypt.php';
require __DIR__ . '/laravel_decrypt.php';
require __DIR__ . '/netcore_openssl.php';

function arg(array $args, string $name): string
{
    $value = base64_decode($args[$name . '_b64'] ?? '', true);
    if ($value === false) {
        throw new \InvalidArgumentException("argument $name is not base64");
    }
    return $value;
}

function run(string $op, array $a): string
{
    switch ($op) {
        case 'paykun_encrypt':
            \PayKun\pin_iv(isset($a['iv_b64']) ? arg($a, 'iv') : null);
            try {
                return \PayKun\encrypt(arg($a, 'text'), arg($a, 'key'));
            } finally {
                \PayKun\pin_iv(null);
            }
        case 'laravel_decrypt':
            return \Laravel\decrypt(arg($a, 'token'), arg($a, 'key'));
        case 'cbc_encrypt':
            return \Netcore\cbc_encrypt(arg($a, 'text'), arg($a, 'key'), arg($a, 'iv'), $a['encoding']);
        case 'cbc_decrypt':
            return \Netcore\cbc_decrypt(arg($a, 'token'), arg($a, 'key'), arg($a, 'iv'), $a['encoding']);
        case 'gcm_encrypt':
            return \Netcore\gcm_encrypt(arg($a, 'text'), arg($a, 'key'));
        case 'gcm_decrypt':
            return \Netcore\gcm_decrypt(arg($a, 'token'), arg($a, 'key'));
    }
    throw new \InvalidArgumentException("unknown op $op");
}

$calls = json_decode(stream_get_contents(STDIN), true, 16, JSON_THROW_ON_ERROR);
$results = [];
foreach ($calls as $call) {
    try {
        $results[] = ['ok' => base64_encode(run($call['op'], $call['args']))];
    } catch (\Throwable $error) {
        $results[] = ['error' => get_class($error) . ': ' . $error->getMessage()];
    }
}
echo json_encode($results, JSON_THROW_ON_ERROR);
