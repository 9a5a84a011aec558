<?php
// Oracle for dLocal's V2-HMAC-SHA256, written the way dLocal's own PHP snippet does it:
//     hash_hmac("sha256", "$login$date$body", $secret)
// stdin:  JSON list of {"secret_b64", "login", "date", "body_b64", optional "authorization"}
// stdout: JSON list of {"signature": "<hex>", "verified": true|false|null}
//         verified: whether "authorization" is "V2-HMAC-SHA256, Signature: <hex>" with the same hex
//         (hash_equals), null when none was given.
$cases = json_decode(stream_get_contents(STDIN), true, 512, JSON_THROW_ON_ERROR);
$out = [];
foreach ($cases as $case) {
    $secret = base64_decode($case["secret_b64"], true);
    $body = base64_decode($case["body_b64"], true);
    $login = $case["login"];
    $date = $case["date"];
    $signature = hash_hmac("sha256", "$login$date$body", $secret);
    $verified = null;
    if (isset($case["authorization"])) {
        $verified = preg_match('/^V2-HMAC-SHA256, Signature: ([0-9a-f]{64})$/D', $case["authorization"], $m) === 1
            && hash_equals($signature, $m[1]);
    }
    $out[] = ["signature" => $signature, "verified" => $verified];
}
echo json_encode($out, JSON_THROW_ON_ERROR), "\n";
