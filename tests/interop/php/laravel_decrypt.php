<?php
// Decryption written the Laravel way (Illuminate\Encryption\Encrypter::decrypt for AES-256-CBC):
// json_decode, validate the payload, hash_equals on the MAC, openssl_decrypt, unserialize.
// The key is used as given (PayKun's secret need not be 32 bytes; openssl pads or truncates it).
namespace Laravel;

function decrypt(string $payload, string $key): string
{
    $payload = json_decode(base64_decode($payload), true);
    if (!is_array($payload)) {
        throw new \RuntimeException('The payload is invalid.');
    }
    foreach (['iv', 'value', 'mac'] as $item) {
        if (!isset($payload[$item]) || !is_string($payload[$item])) {
            throw new \RuntimeException('The payload is invalid.');
        }
    }
    if (strlen(base64_decode($payload['iv'], true)) !== openssl_cipher_iv_length('aes-256-cbc')) {
        throw new \RuntimeException('The payload is invalid.');
    }
    $mac = hash_hmac('sha256', $payload['iv'] . $payload['value'], $key);
    if (!hash_equals($mac, $payload['mac'])) {
        throw new \RuntimeException('The MAC is invalid.');
    }
    $iv = base64_decode($payload['iv']);
    $decrypted = openssl_decrypt($payload['value'], 'AES-256-CBC', $key, 0, $iv);
    if ($decrypted === false) {
        throw new \RuntimeException('Could not decrypt the data.');
    }
    return unserialize($decrypted);
}
