//! Trigger settings about the caller: `auth` in all its forms, `method`, `allow ip` and `cors`.

use super::Lower;
use crate::lang::ast::{self, AuthForm, HmacLine, Span};
use crate::lang::diagnostic::Kind;
use crate::lang::ir::{self, Algorithm, AuthKind, Encoding, Scheme};
use crate::lang::types::Types;

/// Default `tolerance` of the signature schemes that sign a timestamp.
const TOLERANCE: std::time::Duration = std::time::Duration::from_secs(300);

/// An `auth hmac` whose `signed` expression is lowered once the extractions are declared.
pub(super) struct PendingSigned<'a>(pub(super) &'a ast::Expr);

impl Lower<'_> {
    /// Lowers `auth`; an `auth hmac` `signed` expression is returned to be lowered later.
    pub(super) fn auth<'a>(&mut self, a: &'a ast::Auth) -> (Option<ir::Auth>, Option<PendingSigned<'a>>) {
        self.const_only = Some("auth settings");
        let mut pending = None;
        let kind = match &a.form {
            AuthForm::Basic { user, password } => {
                let user = self.expr(user);
                let password = self.secret(password);
                Some(AuthKind::Basic { user, password })
            }
            AuthForm::Header { name, secret } => {
                let secret = self.secret(secret);
                self.header_name(name).map(|name| AuthKind::Header { name, secret })
            }
            AuthForm::Token { scheme, secret, tolerance, url, public_key } => {
                self.token(scheme, secret, tolerance, url, *public_key)
            }
            AuthForm::Hmac(lines) => {
                let (kind, signed) = self.hmac(lines, a.span);
                pending = signed.map(PendingSigned);
                kind
            }
        };
        self.const_only = None;
        if auth_uses_env(&a.form) {
            let d = crate::lang::diagnostic::Diagnostic::new(
                Kind::EnvInAuth,
                self.file,
                a.span,
                "`env()` in an auth setting",
            )
            .label("a secret read with env()");
            self.push(d);
        }
        (kind.map(|kind| ir::Auth { span: a.span, kind }), pending)
    }

    /// A secret: a string, or an array of strings (any one matching is enough).
    fn secret(&mut self, e: &ast::Expr) -> ir::Expr {
        let (x, t) = self.typed(e);
        if !t.meets(Types::STRING.or(Types::ARRAY)) {
            self.err(
                Kind::TypeMismatch,
                e.span,
                format!("a secret is a string or an array of strings, not {}", t.describe_value()),
            )
            .set_label("not a secret");
        }
        x
    }

    fn token(
        &mut self,
        scheme: &ast::Ident,
        secret: &ast::Expr,
        tolerance: &Option<ast::Duration>,
        url: &Option<ast::Str>,
        public_key: bool,
    ) -> Option<AuthKind> {
        let span = secret.span;
        let secret = self.secret(secret);
        if public_key && scheme.name != "standard_webhooks" {
            self.err(Kind::InvalidAuth, span, format!("`auth {}` has no public key", scheme.name))
                .set_label("only Standard Webhooks signs with a key pair")
                .set_help("write `auth standard_webhooks { public_key secret(\"KEY\") }`, or the form's shared secret");
            return None;
        }
        if scheme.name == "bearer" {
            self.refuse_options(scheme, tolerance, url, false, false);
            return Some(AuthKind::Bearer(secret));
        }
        let Some(s) = Scheme::from_name(&scheme.name) else {
            let names: Vec<&str> = ["basic", "bearer", "header", "hmac"]
                .into_iter()
                .chain(Scheme::NAMES.iter().map(|(n, _)| *n))
                .collect();
            let help = match super::closest(&scheme.name, names.iter().copied()) {
                Some(n) => format!("did you mean `{n}`?"),
                None => format!("the forms are {}", names.join(", ")),
            };
            self.err(Kind::UnknownAuth, scheme.span, format!("unknown auth form `{}`", scheme.name))
                .set_label("not an auth form")
                .set_help(help);
            return None;
        };
        self.refuse_options(scheme, tolerance, url, s.has_timestamp(), s == Scheme::Twilio);
        let tolerance = match tolerance {
            Some(d) => self.duration(d)?,
            None => TOLERANCE,
        };
        let url = match url {
            Some(u) => Some(self.literal(u, "a signed URL")?),
            None => None,
        };
        Some(AuthKind::Signature(ir::Signature { scheme: s, secret, tolerance, url, hmac: None, public_key }))
    }

    /// `tolerance` only where a timestamp is signed; `url` only for twilio.
    fn refuse_options(
        &mut self,
        scheme: &ast::Ident,
        tolerance: &Option<ast::Duration>,
        url: &Option<ast::Str>,
        takes_tolerance: bool,
        takes_url: bool,
    ) {
        if let (Some(d), false) = (tolerance, takes_tolerance) {
            self.err(Kind::InvalidAuth, d.span, format!("`auth {}` signs no timestamp", scheme.name))
                .set_label("no `tolerance` here")
                .set_help("`tolerance` goes with stripe, slack and standard_webhooks");
        }
        if let (Some(u), false) = (url, takes_url) {
            self.err(Kind::InvalidAuth, u.span, format!("`auth {}` signs no URL", scheme.name))
                .set_label("no `url` here")
                .set_help("`url` goes with twilio");
        }
    }

    pub(super) fn duration(&mut self, d: &ast::Duration) -> Option<std::time::Duration> {
        match d.millis {
            Some(ms) => Some(std::time::Duration::from_millis(ms)),
            None => {
                self.err(Kind::InvalidAuth, d.span, format!("`{}` is too long", d.text))
                    .set_label("out of range")
                    .set_help("write a duration such as 5m, 300s or 1h");
                None
            }
        }
    }

    fn hmac<'a>(&mut self, lines: &'a [HmacLine], span: Span) -> (Option<AuthKind>, Option<&'a ast::Expr>) {
        let mut header = None;
        let mut prefix = String::new();
        let mut algorithm = None;
        let mut encoding = None;
        let mut secret = None;
        let mut signed = None;
        for line in lines {
            match line {
                HmacLine::Header(s, _) => header = self.header_name(s),
                HmacLine::Prefix(s, _) => prefix = self.literal(s, "a prefix").unwrap_or_default(),
                HmacLine::Algorithm(a, _) => {
                    algorithm = match a.name.as_str() {
                        "sha1" => Some(Algorithm::Sha1),
                        "sha256" => Some(Algorithm::Sha256),
                        "sha512" => Some(Algorithm::Sha512),
                        other => {
                            self.err(Kind::InvalidAuth, a.span, format!("unknown algorithm `{other}`"))
                                .set_label("not an algorithm")
                                .set_help("the algorithms are sha1, sha256 and sha512");
                            None
                        }
                    }
                }
                HmacLine::Encoding(e, _) => {
                    encoding = match e.name.as_str() {
                        "hex" => Some(Encoding::Hex),
                        "base64" => Some(Encoding::Base64),
                        other => {
                            self.err(Kind::InvalidAuth, e.span, format!("unknown encoding `{other}`"))
                                .set_label("not an encoding")
                                .set_help("the encodings are hex and base64");
                            None
                        }
                    }
                }
                HmacLine::Secret(e, _) => secret = Some(self.secret(e)),
                HmacLine::Signed(e, _) => signed = Some(e),
            }
        }
        let missing: Vec<&str> = [
            ("header", lines.iter().any(|l| matches!(l, HmacLine::Header(..)))),
            ("algorithm", lines.iter().any(|l| matches!(l, HmacLine::Algorithm(..)))),
            ("encoding", lines.iter().any(|l| matches!(l, HmacLine::Encoding(..)))),
            ("secret", secret.is_some()),
        ]
        .into_iter()
        .filter(|(_, present)| !present)
        .map(|(n, _)| n)
        .collect();
        if !missing.is_empty() {
            self.err(Kind::InvalidAuth, span, format!("`auth hmac` needs {}", missing.join(", ")))
                .set_label("incomplete")
                .set_help("write `auth hmac { header \"X-Signature\" algorithm sha256 encoding hex secret env(\"KEY\") }`");
        }
        let (Some(header), Some(algorithm), Some(encoding), Some(secret)) =
            (header, algorithm, encoding, secret)
        else {
            return (None, None);
        };
        let hmac = ir::Hmac { header, prefix, algorithm, encoding, signed: None, raw_body_slot: 0 };
        let sig = ir::Signature {
            scheme: Scheme::Hmac,
            secret,
            tolerance: TOLERANCE,
            url: None,
            hmac: Some(hmac),
            public_key: false,
        };
        (Some(AuthKind::Signature(sig)), signed)
    }

    /// Lowers `auth hmac`'s `signed` expression: it may read `raw_body` and header extractions.
    pub(super) fn signed(&mut self, auth: &mut Option<ir::Auth>, pending: PendingSigned<'_>) {
        let Some(hmac) = auth.as_mut().and_then(|a| match &mut a.kind {
            AuthKind::Signature(s) => s.hmac.as_mut(),
            _ => None,
        }) else {
            return;
        };
        self.scopes.push(Vec::new());
        self.scope_ends.push(pending.0.span.end);
        let name = ast::Ident { name: "raw_body".to_string(), span: pending.0.span };
        let raw = self.declare(&name, false, Types::STRING, (pending.0.span, "the raw body".to_string()));
        let (e, t) = self.typed(pending.0);
        self.end_scope();
        // Only header extractions and `raw_body` exist before the body is checked.
        let allowed = |slot: ir::Slot, vars: &[super::Var]| {
            slot == raw || vars.get(slot as usize).is_some_and(|v| v.header)
        };
        let mut bad = Vec::new();
        walk_slots(&e, &mut |s| {
            if !allowed(s, &self.vars) {
                bad.push(s);
            }
        });
        if let Some(name) = bad.first().and_then(|s| self.vars.get(*s as usize)).map(|v| v.name.clone()) {
            self.err(Kind::VariableNotAllowed, pending.0.span, format!("`signed` cannot use `{name}`"))
                .set_label("the signature is checked before the body and query are read")
                .set_help("`signed` may use `raw_body` and header extractions, e.g. \"${ts}.${raw_body}\"");
        }
        if !t.meets(Types::STRING) {
            self.err(
                Kind::TypeMismatch,
                pending.0.span,
                format!("`signed` is text, not {}", t.describe_value()),
            )
            .set_label("not text");
        }
        hmac.signed = Some(e);
        hmac.raw_body_slot = raw;
    }

    /// `method "GET" "POST"`.
    pub(super) fn methods(&mut self, strings: &[ast::Str]) -> Vec<http::Method> {
        let mut out = Vec::new();
        for s in strings {
            let Some(m) = self.literal(s, "a method") else { continue };
            match http::Method::from_bytes(m.as_bytes()) {
                Ok(method) if m.bytes().all(|b| b.is_ascii_uppercase()) => {
                    if !out.contains(&method) {
                        out.push(method);
                    }
                }
                _ => {
                    self.err(Kind::InvalidMethod, s.span, format!("`{m}` is not an HTTP method"))
                        .set_label("not a method");
                }
            }
        }
        out
    }

    /// `allow ip "10.0.0.0/8" "::1"`.
    pub(super) fn networks(&mut self, strings: &[ast::Str]) -> Vec<ipnet::IpNet> {
        let mut out = Vec::new();
        for s in strings {
            let Some(text) = self.literal(s, "a network") else { continue };
            let net = text
                .parse::<ipnet::IpNet>()
                .ok()
                .or_else(|| text.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from));
            match net {
                Some(n) => out.push(n.trunc()),
                None => {
                    self.err(
                        Kind::InvalidNetwork,
                        s.span,
                        format!("`{text}` is not an address or a network"),
                    )
                    .set_label("not an IP address or CIDR network");
                }
            }
        }
        out
    }

    /// `cors { origin "https://a.example" }`.
    pub(super) fn origins(&mut self, strings: &[ast::Str]) -> Vec<String> {
        let mut out = Vec::new();
        for s in strings {
            let Some(o) = self.literal(s, "an origin") else { continue };
            let ok = o == "*"
                || (o.starts_with("http://") || o.starts_with("https://"))
                    && !o.ends_with('/')
                    && o.bytes().all(|b| b.is_ascii_graphic())
                    && o.matches('/').count() == 2;
            if ok {
                out.push(o);
            } else {
                self.err(Kind::InvalidOrigin, s.span, format!("`{o}` is not an origin"))
                    .set_label("not scheme://host[:port]");
            }
        }
        out
    }

    /// The header a `header "Name"` (auth, answer, call or test line) names; a name that is not
    /// one is reported.
    pub(super) fn header_name(&mut self, s: &ast::Str) -> Option<http::HeaderName> {
        let n = self.literal(s, "a header name")?;
        match http::HeaderName::from_bytes(n.as_bytes()) {
            Ok(h) => Some(h),
            Err(_) => {
                self.err(Kind::InvalidHeaderName, s.span, format!("`{n}` is not a valid header name"))
                    .set_label("not a header name")
                    .set_help("header names are letters, digits and `-`, e.g. \"X-Request-Id\"");
                None
            }
        }
    }
}

/// Whether an auth setting reads `env()` (rather than `secret()`).
fn auth_uses_env(form: &AuthForm) -> bool {
    fn env_in(e: &ast::Expr) -> bool {
        use ast::ExprKind as K;
        match &e.kind {
            K::Call(name, args) => name.name == "env" || args.iter().any(env_in),
            K::Array(items) => items.iter().any(env_in),
            K::Object(entries) => entries.iter().any(|(_, x)| env_in(x)),
            K::Str(s) => s.parts.iter().any(|p| matches!(p, ast::StrPart::Expr(x) if env_in(x))),
            K::Field(x, _) | K::Unary(_, x) | K::Paren(x) => env_in(x),
            K::Index(a, b) | K::Binary(_, a, b) => env_in(a) || env_in(b),
            _ => false,
        }
    }
    match form {
        AuthForm::Basic { user, password } => env_in(user) || env_in(password),
        AuthForm::Header { secret, .. } | AuthForm::Token { secret, .. } => env_in(secret),
        AuthForm::Hmac(lines) => lines.iter().any(|l| matches!(l, HmacLine::Secret(e, _) if env_in(e))),
    }
}

/// Calls `f` with every slot an expression reads.
fn walk_slots(e: &ir::Expr, f: &mut dyn FnMut(ir::Slot)) {
    use ir::Expr;
    match e {
        Expr::Slot(s) | Expr::Take(s) => f(*s),
        Expr::Const(_) | Expr::Env(_) | Expr::Secret(_) => {}
        Expr::Template(parts) => {
            for p in parts {
                if let ir::Part::Expr(x) = p {
                    walk_slots(x, f);
                }
            }
        }
        Expr::Array(items) | Expr::Call(_, items) => items.iter().for_each(|x| walk_slots(x, f)),
        Expr::Object(entries) => entries.iter().for_each(|(_, x)| walk_slots(x, f)),
        Expr::Field(x, _) | Expr::Not(x) | Expr::Neg(x) | Expr::Matches(x, _) => walk_slots(x, f),
        Expr::Index(a, b) | Expr::Binary(_, a, b) => {
            walk_slots(a, f);
            walk_slots(b, f);
        }
        Expr::Comprehension { iter, elem, cond, .. } => {
            walk_slots(iter, f);
            walk_slots(elem, f);
            if let Some(c) = cond {
                walk_slots(c, f);
            }
        }
    }
}
