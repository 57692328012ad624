//! `test` blocks: the request sent, `mock` lines and `expect` lines.

use super::*;

impl Builder<'_> {
    pub(super) fn mock(&mut self, p: Pair<Rule>) -> Option<Mock> {
        let span = self.span_of(&p);
        let inner = p
            .into_inner()
            .find(|x| matches!(x.as_rule(), Rule::mock_http | Rule::mock_run | Rule::mock_callback))?;
        let rule = inner.as_rule();
        if rule == Rule::mock_callback {
            let body = inner
                .into_inner()
                .find(|x| matches!(x.as_rule(), Rule::req_json | Rule::req_text | Rule::req_form));
            let call = match body {
                None => None,
                Some(b) => {
                    let kind = match b.as_rule() {
                        Rule::req_json => CallbackBody::Json,
                        Rule::req_text => CallbackBody::Text,
                        _ => CallbackBody::Form,
                    };
                    Some((kind, self.child_expr(b)?))
                }
            };
            return Some(Mock::Callback { call, span });
        }
        let mut method = None;
        let mut target = None;
        let mut answer = None;
        let (mut code, mut stdout, mut stderr) = (None, None, None);
        for c in inner.into_inner() {
            match c.as_rule() {
                Rule::method => method = Some(self.ident(c)),
                Rule::string => target = Some(self.string(c)),
                Rule::respond => answer = Some(MockAnswer::Respond(self.respond(c))),
                Rule::fail_stmt => {
                    let fspan = self.span_of(&c);
                    answer = self.child_expr(c).map(|e| MockAnswer::Fail(e, fspan));
                }
                Rule::mock_code => code = self.child_expr(c),
                Rule::mock_stdout => stdout = self.child_expr(c),
                Rule::mock_stderr => stderr = self.child_expr(c),
                _ => {}
            }
        }
        Some(match rule {
            Rule::mock_http => Mock::Http { method: method?, url: target?, answer: answer?, span },
            _ => Mock::Run { program: target?, code, stdout, stderr, span },
        })
    }

    pub(super) fn test(&mut self, p: Pair<Rule>) -> Test {
        let span = self.span_of(&p);
        let mut name = Str { parts: Vec::new(), span };
        let mut request = None;
        let mut expects = Vec::new();
        let mut mocks = Vec::new();
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::string => name = self.string(c),
                Rule::request => request = Some(self.request(c)),
                Rule::expect_stmt => {
                    if let Some(e) = self.child_expr(c) {
                        expects.push(e);
                    }
                }
                Rule::mock => mocks.extend(self.mock(c)),
                _ => {}
            }
        }
        let request = request.unwrap_or_else(|| Request {
            method: Ident { name: "POST".into(), span },
            url: Str { parts: Vec::new(), span },
            lines: Vec::new(),
            has_block: false,
            span,
        });
        Test { name, request, expects, mocks, span }
    }

    pub(super) fn request(&mut self, p: Pair<Rule>) -> Request {
        let span = self.span_of(&p);
        let mut method = Ident { name: String::new(), span };
        let mut url = Str { parts: Vec::new(), span };
        let mut lines = Vec::new();
        let mut has_block = false;
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::method => method = self.ident(c),
                Rule::string => url = self.string(c),
                Rule::request_block => {
                    has_block = true;
                    for l in c.into_inner() {
                        let lspan = self.span_of(&l);
                        match l.as_rule() {
                            Rule::req_auth => {
                                let exprs: Vec<Expr> = l
                                    .into_inner()
                                    .filter(|x| x.as_rule() == Rule::expr)
                                    .map(|x| self.expr(x))
                                    .collect();
                                let mut it = exprs.into_iter();
                                if let (Some(user), Some(password)) = (it.next(), it.next()) {
                                    lines.push(RequestLine::Auth { user, password, span: lspan });
                                }
                            }
                            Rule::req_header => {
                                if let Some((name, value)) = self.header_line(l) {
                                    lines.push(RequestLine::Header { name, value, span: lspan });
                                }
                            }
                            Rule::req_json | Rule::req_text | Rule::req_bytes => {
                                let json = l.as_rule() == Rule::req_json;
                                let kind = match l.as_rule() {
                                    Rule::req_json => FileBody::Json,
                                    Rule::req_text => FileBody::Text,
                                    _ => FileBody::Bytes,
                                };
                                let file = l.clone().into_inner().find(|x| x.as_rule() == Rule::req_file);
                                if let Some(f) = file {
                                    if let Some(s) = f.into_inner().find(|x| x.as_rule() == Rule::string) {
                                        let path = self.string(s);
                                        lines.push(RequestLine::File { kind, path, span: lspan });
                                    }
                                } else if let Some(e) = self.child_expr(l) {
                                    lines.push(if json {
                                        RequestLine::Json(e, lspan)
                                    } else {
                                        RequestLine::Text(e, lspan)
                                    });
                                }
                            }
                            Rule::req_form => {
                                if let Some(e) = self.child_expr(l) {
                                    lines.push(RequestLine::Form(e, lspan));
                                }
                            }
                            Rule::req_sign => {
                                let (provider, secret) = self.sign_line(l);
                                if let (Some(provider), Some(secret)) = (provider, secret) {
                                    lines.push(RequestLine::Sign { provider, secret, span: lspan });
                                }
                            }
                            Rule::req_content_type => {
                                if let Some(s) = l.into_inner().find(|x| x.as_rule() == Rule::string) {
                                    lines.push(RequestLine::ContentType(self.string(s), lspan));
                                }
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        Request { method, url, lines, has_block, span }
    }
}

impl Builder<'_> {
    /// `sign PROVIDER EXPR` (a test's request, an `http` call): the provider and the secret.
    pub(super) fn sign_line(&mut self, l: Pair<Rule>) -> (Option<Ident>, Option<Expr>) {
        let mut provider = None;
        let mut secret = None;
        for x in l.into_inner() {
            match x.as_rule() {
                Rule::ident_any => provider = Some(self.ident(x)),
                Rule::expr => secret = Some(self.expr(x)),
                _ => {}
            }
        }
        (provider, secret)
    }
}
