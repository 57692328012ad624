//! Signatures of webhook providers: each scheme's header parsed, the MAC computed over
//! the raw bytes exactly as received, compared in constant time against every secret (rotation).
//! Also signs, as the provider would, for `wf test`'s `sign`.

use crate::lang::ir::{Algorithm, Encoding, Scheme};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use subtle::ConstantTimeEq;

/// Why a signature check failed: the text of the `401`'s `error`. Never says what was expected.
pub type Refusal = &'static str;

pub const MISSING_SIGNATURE: Refusal = "missing signature";
pub const INVALID_SIGNATURE: Refusal = "invalid signature";
pub const MISSING_TIMESTAMP: Refusal = "missing timestamp";
pub const INVALID_TIMESTAMP: Refusal = "invalid timestamp";
pub const OUTSIDE_TOLERANCE: Refusal = "timestamp outside tolerance";

/// Most signatures one header may offer (Stripe's `v1=`, Standard Webhooks' `v1,`): more is refused.
const MAX_CANDIDATES: usize = 32;

/// A signature check ready to run: the scheme and its secrets as bytes.
#[derive(Debug)]
pub struct Verifier {
    pub scheme: Scheme,
    /// Every accepted secret (rotation); for standard_webhooks, the decoded keys.
    pub secrets: Vec<Vec<u8>>,
    pub tolerance_secs: u64,
    /// `auth hmac` only.
    pub hmac: Option<HmacHeader>,
    /// `auth standard_webhooks { public_key ... }`: the keys `v1a` signatures are checked with
    /// (then `secrets` is empty).
    pub public_keys: Vec<ed25519_dalek::VerifyingKey>,
}

/// Where `auth hmac` finds its signature and how it is written.
#[derive(Debug)]
pub struct HmacHeader {
    pub header: http::HeaderName,
    pub prefix: String,
    pub algorithm: Algorithm,
    pub encoding: Encoding,
}

/// What a check reads of a request.
pub struct Signed<'a> {
    pub headers: &'a HeaderMap,
    /// The raw body, or for `auth hmac` with `signed` the content it names.
    pub body: &'a [u8],
    /// Twilio: the full URL the sender used.
    pub url: &'a str,
    /// Twilio: the form parameters (name, value), as sent.
    pub params: &'a [(String, String)],
    /// Seconds since the Unix epoch.
    pub now: u64,
}

impl Verifier {
    /// Checks the request's signature against every secret.
    pub fn verify(&self, r: &Signed) -> Result<(), Refusal> {
        match self.scheme {
            Scheme::Github => {
                let given = header(r.headers, "x-hub-signature-256")?;
                let hex = given.strip_prefix("sha256=").ok_or(INVALID_SIGNATURE)?;
                let tag = decode_hex(hex)?;
                self.any(Algorithm::Sha256, &[r.body], |mac| ct(&mac, &tag))
            }
            Scheme::Shopify => {
                let tag = decode_base64(header(r.headers, "x-shopify-hmac-sha256")?)?;
                self.any(Algorithm::Sha256, &[r.body], |mac| ct(&mac, &tag))
            }
            Scheme::Stripe => {
                let given = header(r.headers, "stripe-signature")?;
                let (t, candidates) = parse_stripe(given)?;
                self.fresh(t, r.now)?;
                let tags = candidates.iter().map(|c| decode_hex(c)).collect::<Result<Vec<_>, _>>()?;
                self.any(Algorithm::Sha256, &[t.as_bytes(), b".", r.body], |mac| {
                    tags.iter().any(|t| ct(&mac, t))
                })
            }
            Scheme::Slack => {
                // The signature first: a request with no signature header at all is "missing
                // signature", whichever scheme.
                let given = header(r.headers, "x-slack-signature")?;
                let ts = header(r.headers, "x-slack-request-timestamp").map_err(|_| MISSING_TIMESTAMP)?;
                self.fresh(ts, r.now)?;
                let tag = decode_hex(given.strip_prefix("v0=").ok_or(INVALID_SIGNATURE)?)?;
                self.any(Algorithm::Sha256, &[b"v0:", ts.as_bytes(), b":", r.body], |mac| ct(&mac, &tag))
            }
            Scheme::StandardWebhooks => {
                let pick = |name: &str| {
                    header(r.headers, &format!("webhook-{name}"))
                        .or_else(|_| header(r.headers, &format!("svix-{name}")))
                };
                let given = pick("signature")?;
                let id = pick("id").map_err(|_| INVALID_SIGNATURE)?;
                let ts = pick("timestamp").map_err(|_| MISSING_TIMESTAMP)?;
                self.fresh(ts, r.now)?;
                let content: [&[u8]; 5] = [id.as_bytes(), b".", ts.as_bytes(), b".", r.body];
                if !self.public_keys.is_empty() {
                    return self.any_public(&content, &parse_standard_with(given, "v1a,")?);
                }
                let tags = parse_standard(given)?;
                self.any(Algorithm::Sha256, &content, |mac| tags.iter().any(|t| ct(&mac, t)))
            }
            Scheme::Twilio => {
                let tag = decode_base64(header(r.headers, "x-twilio-signature")?)?;
                let content = twilio_content(r.url, r.params);
                self.any(Algorithm::Sha1, &[content.as_bytes()], |mac| ct(&mac, &tag))
            }
            Scheme::Hmac => {
                let Some(h) = &self.hmac else { return Err(INVALID_SIGNATURE) };
                let given = header(r.headers, h.header.as_str())?;
                let given = given.strip_prefix(h.prefix.as_str()).ok_or(INVALID_SIGNATURE)?;
                let tag = match h.encoding {
                    Encoding::Hex => decode_hex(given)?,
                    Encoding::Base64 => decode_base64(given)?,
                };
                self.any(h.algorithm, &[r.body], |mac| ct(&mac, &tag))
            }
        }
    }

    /// Whether any of the ed25519 signatures `tags` over the concatenated `parts` is one of the
    /// public keys'.
    fn any_public(&self, parts: &[&[u8]], tags: &[Vec<u8>]) -> Result<(), Refusal> {
        let message = parts.concat();
        let mut matched = false;
        for key in &self.public_keys {
            for tag in tags {
                if let Ok(sig) = ed25519_dalek::Signature::from_slice(tag) {
                    matched |= key.verify_strict(&message, &sig).is_ok();
                }
            }
        }
        if matched {
            Ok(())
        } else {
            Err(INVALID_SIGNATURE)
        }
    }

    /// Whether any secret's MAC over the concatenated `parts` satisfies `ok`.
    fn any(
        &self,
        algorithm: Algorithm,
        parts: &[&[u8]],
        ok: impl Fn(Vec<u8>) -> bool,
    ) -> Result<(), Refusal> {
        let mut matched = false;
        for secret in &self.secrets {
            // Every secret is tried, so the time taken does not say which one matched.
            matched |= ok(mac(algorithm, secret, parts));
        }
        if matched {
            Ok(())
        } else {
            Err(INVALID_SIGNATURE)
        }
    }

    /// The signed timestamp is within the tolerance of now, in either direction.
    fn fresh(&self, ts: &str, now: u64) -> Result<(), Refusal> {
        let t = parse_timestamp(ts)?;
        if now.abs_diff(t) > self.tolerance_secs {
            return Err(OUTSIDE_TOLERANCE);
        }
        Ok(())
    }
}

/// A header's value as text; absent, empty or not visible ASCII is "missing".
fn header<'h>(headers: &'h HeaderMap, name: &str) -> Result<&'h str, Refusal> {
    let v = headers.get(name).ok_or(MISSING_SIGNATURE)?;
    let s = v.to_str().map_err(|_| INVALID_SIGNATURE)?.trim();
    if s.is_empty() {
        return Err(MISSING_SIGNATURE);
    }
    Ok(s)
}

/// Seconds since the epoch, as sent: digits only (no sign, no fraction), at most 12 of them.
pub fn parse_timestamp(ts: &str) -> Result<u64, Refusal> {
    if ts.is_empty() || ts.len() > 12 || !ts.bytes().all(|b| b.is_ascii_digit()) {
        return Err(INVALID_TIMESTAMP);
    }
    ts.parse::<u64>().map_err(|_| INVALID_TIMESTAMP)
}

/// `t=1492774577,v1=5257a8...,v1=...,v0=...` → the timestamp and every `v1`.
pub fn parse_stripe(header: &str) -> Result<(&str, Vec<&str>), Refusal> {
    let mut t = None;
    let mut v1 = Vec::new();
    for item in header.split(',') {
        let Some((k, v)) = item.trim().split_once('=') else { continue };
        match k {
            "t" => t = Some(v),
            "v1" => {
                if v1.len() == MAX_CANDIDATES {
                    return Err(INVALID_SIGNATURE);
                }
                v1.push(v);
            }
            _ => {}
        }
    }
    let t = t.ok_or(MISSING_TIMESTAMP)?;
    if v1.is_empty() {
        return Err(MISSING_SIGNATURE);
    }
    Ok((t, v1))
}

/// `v1,<base64> v1,<base64>` → every `v1` signature, decoded (other versions are skipped).
pub fn parse_standard(header: &str) -> Result<Vec<Vec<u8>>, Refusal> {
    parse_standard_with(header, "v1,")
}

/// The signatures of a Standard Webhooks header with this version (`v1,` symmetric, `v1a,`
/// ed25519).
fn parse_standard_with(header: &str, version: &str) -> Result<Vec<Vec<u8>>, Refusal> {
    let mut out = Vec::new();
    for item in header.split(' ').filter(|s| !s.is_empty()) {
        let Some(sig) = item.strip_prefix(version) else { continue };
        if out.len() == MAX_CANDIDATES {
            return Err(INVALID_SIGNATURE);
        }
        out.push(decode_base64(sig)?);
    }
    if out.is_empty() {
        return Err(INVALID_SIGNATURE);
    }
    Ok(out)
}

/// A Standard Webhooks public key: `whpk_` + the base64 of an ed25519 key (the prefix is
/// optional).
pub fn standard_public_key(key: &str) -> Option<ed25519_dalek::VerifyingKey> {
    let b64 = key.strip_prefix("whpk_").unwrap_or(key);
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    ed25519_dalek::VerifyingKey::from_bytes(&<[u8; 32]>::try_from(bytes.as_slice()).ok()?).ok()
}

/// The Standard Webhooks key: `whsec_` + base64 (the prefix is optional).
pub fn standard_key(secret: &str) -> Option<Vec<u8>> {
    let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
    // An empty key would make every signature of an empty-keyed HMAC valid: a forgery.
    base64::engine::general_purpose::STANDARD.decode(b64).ok().filter(|key| !key.is_empty())
}

/// A Standard Webhooks signing key: `whsk_` + the base64 of an ed25519 seed (32 bytes), or of
/// the seed followed by its public key (64 bytes, as libsodium keeps it: the public half must
/// be the seed's).
pub fn standard_signing_key(key: &str) -> Option<ed25519_dalek::SigningKey> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(key.strip_prefix("whsk_")?).ok()?;
    let seed = <[u8; 32]>::try_from(bytes.get(..32)?).ok()?;
    let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
    match bytes.len() {
        32 => Some(signing),
        64 => (bytes.get(32..) == Some(signing.verifying_key().as_bytes().as_slice())).then_some(signing),
        _ => None,
    }
}

/// Twilio signs the full URL followed by each form parameter, sorted by name, as name+value.
pub fn twilio_content(url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    let mut out = String::from(url);
    for (k, v) in sorted {
        out.push_str(k);
        out.push_str(v);
    }
    out
}

fn decode_hex(s: &str) -> Result<Vec<u8>, Refusal> {
    hex::decode(s).map_err(|_| INVALID_SIGNATURE)
}

fn decode_base64(s: &str) -> Result<Vec<u8>, Refusal> {
    base64::engine::general_purpose::STANDARD.decode(s).map_err(|_| INVALID_SIGNATURE)
}

/// Constant-time equality (only a length difference is visible).
fn ct(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// The HMAC of the concatenated `parts`.
pub fn mac(algorithm: Algorithm, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let Ok(mut m) = <M as hmac::digest::KeyInit>::new_from_slice(key) else {
            return Vec::new();
        };
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().to_vec()
    }
    match algorithm {
        Algorithm::Sha1 => run::<Hmac<sha1::Sha1>>(key, parts),
        Algorithm::Sha256 => run::<Hmac<sha2::Sha256>>(key, parts),
        Algorithm::Sha512 => run::<Hmac<sha2::Sha512>>(key, parts),
    }
}

/// The headers `scheme` would send for `body`, signed at `now` with `secret` (for `wf test`).
pub fn sign(
    scheme: Scheme,
    secret: &str,
    body: &[u8],
    url: &str,
    params: &[(String, String)],
    now: u64,
) -> Vec<(&'static str, String)> {
    let b64 = |b: Vec<u8>| base64::engine::general_purpose::STANDARD.encode(b);
    let key = secret.as_bytes();
    let ts = now.to_string();
    match scheme {
        Scheme::Github => vec![(
            "x-hub-signature-256",
            format!("sha256={}", hex::encode(mac(Algorithm::Sha256, key, &[body]))),
        )],
        Scheme::Shopify => vec![("x-shopify-hmac-sha256", b64(mac(Algorithm::Sha256, key, &[body])))],
        Scheme::Stripe => {
            let sig = hex::encode(mac(Algorithm::Sha256, key, &[ts.as_bytes(), b".", body]));
            vec![("stripe-signature", format!("t={ts},v1={sig}"))]
        }
        Scheme::Slack => {
            let sig = hex::encode(mac(Algorithm::Sha256, key, &[b"v0:", ts.as_bytes(), b":", body]));
            vec![("x-slack-request-timestamp", ts), ("x-slack-signature", format!("v0={sig}"))]
        }
        Scheme::StandardWebhooks if secret.starts_with("whsk_") => {
            // An ed25519 signing key: a `v1a` signature, checked with its `whpk_` public key.
            let id = format!("msg_{now:x}");
            let sig = standard_signing_key(secret).map_or_else(String::new, |key| {
                use ed25519_dalek::Signer as _;
                let content = [id.as_bytes(), b".", ts.as_bytes(), b".", body].concat();
                b64(key.sign(&content).to_bytes().to_vec())
            });
            vec![("webhook-id", id), ("webhook-timestamp", ts), ("webhook-signature", format!("v1a,{sig}"))]
        }
        Scheme::StandardWebhooks => {
            let id = format!("msg_{now:x}");
            let key = standard_key(secret).unwrap_or_default();
            let sig = b64(mac(Algorithm::Sha256, &key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]));
            vec![("webhook-id", id), ("webhook-timestamp", ts), ("webhook-signature", format!("v1,{sig}"))]
        }
        Scheme::Twilio => {
            let content = twilio_content(url, params);
            vec![("x-twilio-signature", b64(mac(Algorithm::Sha1, key, &[content.as_bytes()])))]
        }
        Scheme::Hmac => Vec::new(),
    }
}

/// The headers wf sends as a webhook sender (`http` with `sign`), over the exact body sent:
/// GitHub's `x-hub-signature-256`; Standard Webhooks' `webhook-id` (`id`: the call's idempotency
/// key), `webhook-timestamp` (`now`, per attempt) and `webhook-signature` (`v1,` and the
/// base64 HMAC-SHA256 with the decoded key).
pub(crate) fn sender_headers(
    scheme: Scheme,
    key: &[u8],
    id: &str,
    body: &[u8],
    now: u64,
) -> Vec<(&'static str, String)> {
    match scheme {
        Scheme::StandardWebhooks => {
            let ts = now.to_string();
            let sig = mac(Algorithm::Sha256, key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
            let sig = base64::engine::general_purpose::STANDARD.encode(sig);
            vec![
                ("webhook-id", id.to_string()),
                ("webhook-timestamp", ts),
                ("webhook-signature", format!("v1,{sig}")),
            ]
        }
        _ => vec![(
            "x-hub-signature-256",
            format!("sha256={}", hex::encode(mac(Algorithm::Sha256, key, &[body]))),
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signing_key_is_a_seed_or_a_seed_and_its_public_key() {
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let seed = [9u8; 32];
        let key = standard_signing_key(&format!("whsk_{}", b64(&seed))).expect("a seed");
        let public = key.verifying_key();
        let both = [seed.as_slice(), public.as_bytes()].concat();
        assert!(standard_signing_key(&format!("whsk_{}", b64(&both))).is_some());
        let wrong = [seed.as_slice(), &[1u8; 32]].concat();
        assert!(
            standard_signing_key(&format!("whsk_{}", b64(&wrong))).is_none(),
            "a public half not the seed's"
        );
        assert!(standard_signing_key(&b64(&seed)).is_none(), "the prefix says it is a signing key");
        assert!(standard_signing_key("whsk_AAAA").is_none());
        // What `sign` makes, the public key checks.
        let headers =
            sign(Scheme::StandardWebhooks, &format!("whsk_{}", b64(&seed)), b"{}", "", &[], 1_700_000_000);
        let given =
            headers.iter().find(|(n, _)| *n == "webhook-signature").map(|(_, v)| v.clone()).expect("signed");
        let tags = parse_standard_with(&given, "v1a,").expect("v1a");
        let sig = ed25519_dalek::Signature::from_slice(&tags[0]).expect("a signature");
        let id = headers.iter().find(|(n, _)| *n == "webhook-id").map(|(_, v)| v.clone()).expect("id");
        assert!(public.verify_strict(format!("{id}.1700000000.{{}}").as_bytes(), &sig).is_ok());
    }

    fn verifier(scheme: Scheme, secret: &[u8]) -> Verifier {
        Verifier {
            scheme,
            secrets: vec![secret.to_vec()],
            tolerance_secs: 300,
            hmac: None,
            public_keys: Vec::new(),
        }
    }

    fn headers(list: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in list {
            h.insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        h
    }

    fn check(v: &Verifier, h: &HeaderMap, body: &[u8], now: u64) -> Result<(), Refusal> {
        v.verify(&Signed { headers: h, body, url: "", params: &[], now })
    }

    /// GitHub's documented test vector (docs.github.com, "Validating webhook deliveries").
    #[test]
    fn githubs_documented_vector() {
        let v = verifier(Scheme::Github, b"It's a Secret to Everybody");
        let good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(check(&v, &headers(&[("x-hub-signature-256", good)]), b"Hello, World!", 0), Ok(()));
        assert_eq!(
            check(&v, &headers(&[("x-hub-signature-256", good)]), b"Hello, World?", 0),
            Err(INVALID_SIGNATURE)
        );
        assert_eq!(check(&v, &headers(&[]), b"Hello, World!", 0), Err(MISSING_SIGNATURE));
        assert_eq!(
            check(&v, &headers(&[("x-hub-signature-256", "sha256=00")]), b"x", 0),
            Err(INVALID_SIGNATURE)
        );
    }

    #[test]
    fn stripe_headers_parse() {
        assert_eq!(parse_stripe("t=12,v1=ab,v0=cd,v1=ef"), Ok(("12", vec!["ab", "ef"])));
        assert_eq!(parse_stripe("v1=ab"), Err(MISSING_TIMESTAMP));
        assert_eq!(parse_stripe("t=1"), Err(MISSING_SIGNATURE));
        let many = format!("t=1,{}", vec!["v1=00"; 1000].join(","));
        assert_eq!(parse_stripe(&many), Err(INVALID_SIGNATURE));
    }

    #[test]
    fn timestamps_are_digits_that_fit() {
        assert_eq!(parse_timestamp("1700000000"), Ok(1_700_000_000));
        for bad in ["", "-5", "1.5", "abc", "99999999999999999999", " 12"] {
            assert_eq!(parse_timestamp(bad), Err(INVALID_TIMESTAMP), "{bad}");
        }
    }

    #[test]
    fn what_sign_writes_verify_accepts_for_every_scheme() {
        let now = 1_700_000_000;
        for (scheme, secret) in [
            (Scheme::Github, "s"),
            (Scheme::Shopify, "s"),
            (Scheme::Stripe, "whsec_abc"),
            (Scheme::Slack, "s"),
            (Scheme::StandardWebhooks, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            (Scheme::Twilio, "s"),
        ] {
            let params = vec![("Body".to_string(), "hi".to_string()), ("From".to_string(), "+1".to_string())];
            let list = sign(scheme, secret, b"{}", "https://a.example/sms", &params, now);
            let mut h = HeaderMap::new();
            for (k, v) in &list {
                h.insert(*k, v.parse().unwrap());
            }
            let key = if scheme == Scheme::StandardWebhooks {
                standard_key(secret).unwrap()
            } else {
                secret.as_bytes().to_vec()
            };
            let v = Verifier {
                scheme,
                secrets: vec![b"old".to_vec(), key],
                tolerance_secs: 300,
                hmac: None,
                public_keys: Vec::new(),
            };
            let r = Signed { headers: &h, body: b"{}", url: "https://a.example/sms", params: &params, now };
            assert_eq!(v.verify(&r), Ok(()), "{scheme:?}");
            let altered = Signed { body: b"{ }", ..r };
            if scheme != Scheme::Twilio {
                assert_eq!(v.verify(&altered), Err(INVALID_SIGNATURE), "{scheme:?}");
            }
            if scheme.has_timestamp() {
                let late = Signed { headers: &h, body: b"{}", url: "", params: &[], now: now + 301 };
                assert_eq!(v.verify(&late), Err(OUTSIDE_TOLERANCE), "{scheme:?}");
                let early = Signed { headers: &h, body: b"{}", url: "", params: &[], now: now - 301 };
                assert_eq!(v.verify(&early), Err(OUTSIDE_TOLERANCE), "{scheme:?}");
            }
        }
    }
}
