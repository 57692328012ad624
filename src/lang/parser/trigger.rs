//! The trigger: its settings, `auth` forms and durations.

use super::*;

impl Builder<'_> {
    pub(super) fn trigger(&mut self, p: Pair<Rule>) -> Trigger {
        let span = self.span_of(&p);
        let mut settings = Vec::new();
        for c in p.into_inner() {
            let cspan = self.span_of(&c);
            match c.as_rule() {
                Rule::t_path => {
                    if let Some(s) = c.into_inner().find(|x| x.as_rule() == Rule::string) {
                        settings.push(Setting::Path(self.string(s), cspan));
                    }
                }
                Rule::t_key => {
                    if let Some(s) = c.into_inner().find(|x| x.as_rule() == Rule::string) {
                        settings.push(Setting::Key(self.string(s), cspan));
                    }
                }
                Rule::t_mode => {
                    let mode = if c.as_str().contains("async") { Mode::Async } else { Mode::Sync };
                    settings.push(Setting::Mode(mode, cspan));
                }
                Rule::t_method | Rule::t_allow => {
                    let strings = c.clone().into_inner().filter(|x| x.as_rule() == Rule::string);
                    let strings: Vec<Str> = strings.map(|x| self.string(x)).collect();
                    settings.push(if c.as_rule() == Rule::t_method {
                        Setting::Methods(strings, cspan)
                    } else {
                        Setting::AllowIp(strings, cspan)
                    });
                }
                Rule::t_cors => {
                    let origins = c.into_inner().filter(|x| x.as_rule() == Rule::cors_origin);
                    let strings: Vec<Str> = origins
                        .flat_map(|o| o.into_inner().filter(|x| x.as_rule() == Rule::string))
                        .map(|x| self.string(x))
                        .collect();
                    settings.push(Setting::Cors(strings, cspan));
                }
                Rule::t_auth => {
                    if let Some(form) = c.into_inner().find(|x| x.as_rule() != Rule::k_auth) {
                        if let Some(form) = self.auth_form(form) {
                            settings.push(Setting::Auth(Auth { form, span: cspan }));
                        }
                    }
                }
                Rule::respond => settings.push(Setting::Respond(self.respond(c))),
                Rule::t_dedupe => {
                    let mut key = None;
                    let mut window = None;
                    for x in c.into_inner() {
                        match x.as_rule() {
                            Rule::expr => key = Some(self.expr(x)),
                            Rule::duration => window = Some(self.duration(x)),
                            _ => {}
                        }
                    }
                    if let Some(key) = key {
                        settings.push(Setting::Dedupe { key, window, span: cspan });
                    }
                }
                Rule::t_debounce => {
                    let mut key = None;
                    let mut times = Vec::new();
                    for x in c.into_inner() {
                        match x.as_rule() {
                            Rule::expr => key = Some(self.expr(x)),
                            Rule::duration => times.push(self.duration(x)),
                            _ => {}
                        }
                    }
                    let mut times = times.into_iter();
                    if let (Some(key), Some(wait)) = (key, times.next()) {
                        settings.push(Setting::Debounce { key, wait, max: times.next(), span: cspan });
                    }
                }
                Rule::t_order => {
                    if let Some(x) = c.into_inner().find(|x| x.as_rule() == Rule::expr) {
                        settings.push(Setting::Order(self.expr(x), cspan));
                    }
                }
                Rule::t_rate => {
                    let (mut n, mut per, mut key) = (None, None, None);
                    for x in c.into_inner() {
                        match x.as_rule() {
                            Rule::count => {
                                n = Some(Count { value: x.as_str().parse().ok(), span: self.span_of(&x) })
                            }
                            Rule::duration => per = Some(self.duration(x)),
                            Rule::expr => key = Some(self.expr(x)),
                            _ => {}
                        }
                    }
                    if let (Some(n), Some(per)) = (n, per) {
                        settings.push(Setting::Rate { n, per, key, span: cspan });
                    }
                }
                Rule::t_concurrency => {
                    if let Some(n) = self.child_count(c) {
                        settings.push(Setting::Concurrency(n, cspan));
                    }
                }
                _ => {}
            }
        }
        Trigger { settings, span }
    }

    pub(super) fn auth_form(&mut self, p: Pair<Rule>) -> Option<AuthForm> {
        match p.as_rule() {
            Rule::auth_basic => {
                let mut exprs = Vec::new();
                for part in p.into_inner() {
                    if matches!(part.as_rule(), Rule::auth_user | Rule::auth_password) {
                        exprs.extend(self.child_expr(part));
                    }
                }
                let mut it = exprs.into_iter();
                Some(AuthForm::Basic { user: it.next()?, password: it.next()? })
            }
            Rule::auth_header => {
                let mut name = None;
                let mut secret = None;
                for part in p.into_inner() {
                    match part.as_rule() {
                        Rule::string => name = Some(self.string(part)),
                        Rule::expr => secret = Some(self.expr(part)),
                        _ => {}
                    }
                }
                Some(AuthForm::Header { name: name?, secret: secret? })
            }
            Rule::auth_token => {
                let (mut scheme, mut secret, mut tolerance, mut url) = (None, None, None, None);
                let mut public_key = false;
                for part in p.into_inner() {
                    match part.as_rule() {
                        Rule::auth_scheme => scheme = Some(self.ident(part)),
                        Rule::expr => secret = Some(self.expr(part)),
                        Rule::auth_public_key => {
                            public_key = true;
                            secret = self.child_expr(part);
                        }
                        Rule::auth_tolerance => {
                            tolerance = part
                                .into_inner()
                                .find(|x| x.as_rule() == Rule::duration)
                                .map(|d| self.duration(d))
                        }
                        Rule::auth_url => {
                            url = part
                                .into_inner()
                                .find(|x| x.as_rule() == Rule::string)
                                .map(|x| self.string(x))
                        }
                        _ => {}
                    }
                }
                Some(AuthForm::Token { scheme: scheme?, secret: secret?, tolerance, url, public_key })
            }
            Rule::auth_hmac => {
                let mut lines = Vec::new();
                for part in p.into_inner() {
                    let span = self.span_of(&part);
                    let rule = part.as_rule();
                    let inner: Vec<Pair<Rule>> = part.into_inner().collect();
                    let last = inner.into_iter().last();
                    let line = match (rule, last) {
                        (Rule::hmac_header, Some(x)) => HmacLine::Header(self.string(x), span),
                        (Rule::hmac_prefix, Some(x)) => HmacLine::Prefix(self.string(x), span),
                        (Rule::hmac_algorithm, Some(x)) => HmacLine::Algorithm(self.ident(x), span),
                        (Rule::hmac_encoding, Some(x)) => HmacLine::Encoding(self.ident(x), span),
                        (Rule::hmac_secret, Some(x)) => HmacLine::Secret(self.expr(x), span),
                        (Rule::hmac_signed, Some(x)) => HmacLine::Signed(self.expr(x), span),
                        _ => continue,
                    };
                    lines.push(line);
                }
                Some(AuthForm::Hmac(lines))
            }
            _ => None,
        }
    }

    pub(super) fn duration(&mut self, p: Pair<Rule>) -> Duration {
        let span = self.span_of(&p);
        let text = p.as_str().to_string();
        let unit_at = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let (digits, unit) = text.split_at(unit_at);
        let scale: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => 86_400_000,
        };
        let millis = digits.parse::<u64>().ok().and_then(|n| n.checked_mul(scale));
        Duration { text, millis, span }
    }
}
