<?php
// Netcore's schemes written directly on PHP's openssl extension (OPENSSL_RAW_DATA), as a partner would.
namespace Netcore;

function cbc_encrypt(string $plaintext, string $key, string $iv, string $encoding): string
{
    $raw = openssl_encrypt($plaintext, 'aes-256-cbc', $key, OPENSSL_RAW_DATA, $iv);
    if ($raw === false) {
        throw new \RuntimeException('openssl_encrypt failed');
    }
    return $encoding === 'hex' ? bin2hex($raw) : base64_encode($raw);
}

function cbc_decrypt(string $token, string $key, string $iv, string $encoding): string
{
    $raw = $encoding === 'hex' ? hex2bin($token) : base64_decode($token, true);
    if ($raw === false) {
        throw new \RuntimeException('token is not ' . $encoding);
    }
    $plaintext = openssl_decrypt($raw, 'aes-256-cbc', $key, OPENSSL_RAW_DATA, $iv);
    if ($plaintext === false) {
        throw new \RuntimeException('openssl_decrypt failed');
    }
    return $plaintext;
}

function gcm_encrypt(string $plaintext, string $key_b64): string
{
    $nonce = random_bytes(12);
    $tag = '';
    $ciphertext = openssl_encrypt(
        $plaintext, 'aes-256-gcm', base64_decode($key_b64, true), OPENSSL_RAW_DATA, $nonce, $tag, '', 16
    );
    if ($ciphertext === false) {
        throw new \RuntimeException('openssl_encrypt failed');
    }
    return base64_encode($nonce . $ciphertext . $tag);
}

function gcm_decrypt(string $token, string $key_b64): string
{
    $raw = base64_decode($token, true);
    if ($raw === false || strlen($raw) < 28) {
        throw new \RuntimeException('token is malformed');
    }
    $plaintext = openssl_decrypt(
        substr($raw, 12, -16), 'aes-256-gcm', base64_decode($key_b64, true), OPENSSL_RAW_DATA,
        substr($raw, 0, 12), substr($raw, -16)
    );
    if ($plaintext === false) {
        throw new \RuntimeException('tag does not match');
    }
    return $plaintext;
}
