<?php
// PayKun's encrypt() (docs.paykun.com, "Web integration: encryption"), copied VERBATIM between the markers.
// It lives in a namespace that defines its own random_bytes(): unqualified calls resolve to the namespace
// function first, so a test can pin the IV and compare tokens byte for byte. Unpinned, it is PHP's own.
namespace PayKun;

/** IV to return from the next random_bytes(16) calls; null means PHP's CSPRNG. */
function pin_iv(?string $iv): void
{
    $GLOBALS['paykun_pinned_iv'] = $iv;
}

function random_bytes(int $length): string
{
    $iv = $GLOBALS['paykun_pinned_iv'] ?? null;
    if ($iv === null) {
        return \random_bytes($length);
    }
    if (strlen($iv) !== $length) {
        throw new \LengthException('pinned IV has the wrong length');
    }
    return $iv;
}

// --- verbatim from PayKun's documentation ---
function encrypt($text, $key) {
    $iv = random_bytes(16);
    $value = openssl_encrypt(serialize($text), 'AES-256-CBC', $key, 0, $iv);
    $bIv = base64_encode($iv);
    $mac = hash_hmac('sha256', $bIv.$value, $key);
    $c_arr = ['iv' => $bIv, 'value' => $value, 'mac' => $mac];
    $json = json_encode($c_arr);
    $crypted = base64_encode($json);
    return $crypted;
}
// --- end of verbatim copy ---
