//! Statements: `let`, `if`, `for`, `log`, `fail`, the effects (`http`, `run`) and `respond`.

use super::*;

impl Builder<'_> {
    pub(super) fn stmt(&mut self, p: Pair<Rule>) -> Option<Stmt> {
        let span = self.span_of(&p);
        Some(match p.as_rule() {
            Rule::let_stmt => {
                let mut name = None;
                let mut value = None;
                let mut effect = None;
                for c in p.into_inner() {
                    match c.as_rule() {
                        Rule::ident => name = Some(self.ident(c)),
                        Rule::expr => value = Some(self.expr(c)),
                        Rule::http_call | Rule::run_call | Rule::callback_call | Rule::wait_call => {
                            effect = self.effect(c)
                        }
                        _ => {}
                    }
                }
                if let Some(effect) = effect {
                    return Some(Stmt::Effect { name: Some(name?), effect, span });
                }
                Stmt::Let { name: name?, value: value?, span }
            }
            Rule::if_stmt => {
                let mut branches = Vec::new();
                let mut otherwise = None;
                let mut cond = None;
                for c in p.into_inner() {
                    match c.as_rule() {
                        Rule::expr => cond = Some(self.expr(c)),
                        Rule::block => {
                            let b = self.block(c);
                            if let Some(e) = cond.take() {
                                branches.push((e, b));
                            }
                        }
                        Rule::else_if => {
                            let mut e = None;
                            for x in c.into_inner() {
                                match x.as_rule() {
                                    Rule::expr => e = Some(self.expr(x)),
                                    Rule::block => {
                                        let b = self.block(x);
                                        if let Some(e) = e.take() {
                                            branches.push((e, b));
                                        }
                                    }
                                    _ => {}
                                }
                            }
                        }
                        Rule::else_block => {
                            otherwise =
                                c.into_inner().find(|x| x.as_rule() == Rule::block).map(|x| self.block(x));
                        }
                        _ => {}
                    }
                }
                Stmt::If(If { branches, otherwise, span })
            }
            Rule::for_stmt => {
                let mut names = Vec::new();
                let mut iter = None;
                let mut body = None;
                let mut parallel = None;
                for c in p.into_inner() {
                    match c.as_rule() {
                        Rule::ident => names.push(self.ident(c)),
                        Rule::expr => iter = Some(self.expr(c)),
                        Rule::block => body = Some(self.block(c)),
                        Rule::count => {
                            parallel = Some(Count { value: c.as_str().parse().ok(), span: self.span_of(&c) })
                        }
                        _ => {}
                    }
                }
                let value = names.pop()?;
                Stmt::For { key: names.pop(), value, iter: iter?, parallel, body: body?, span }
            }
            Rule::respond => Stmt::Respond(self.respond(p)),
            Rule::log_stmt => Stmt::Log(self.child_expr(p)?, span),
            Rule::fail_stmt => Stmt::Fail(self.child_expr(p)?, span),
            Rule::sleep_stmt => {
                let inner =
                    p.into_inner().find(|x| x.as_rule() == Rule::duration || x.as_rule() == Rule::expr)?;
                let time = match inner.as_rule() {
                    Rule::duration => SleepFor::Fixed(self.duration(inner)),
                    _ => SleepFor::Seconds(self.expr(inner)),
                };
                Stmt::Sleep(time, span)
            }
            Rule::http_call | Rule::run_call | Rule::wait_call => {
                Stmt::Effect { name: None, effect: self.effect(p)?, span }
            }
            _ => return None,
        })
    }

    pub(super) fn effect(&mut self, p: Pair<Rule>) -> Option<Effect> {
        let span = self.span_of(&p);
        let rule = p.as_rule();
        match rule {
            Rule::callback_call => {
                let timeout =
                    p.into_inner().find(|x| x.as_rule() == Rule::duration).map(|d| self.duration(d));
                return Some(Effect::Callback { timeout, span });
            }
            Rule::wait_call => return Some(Effect::Wait { of: self.child_expr(p)?, span }),
            _ => {}
        }
        let mut method = None;
        let mut first = None;
        let mut program = None;
        let mut args = None;
        let mut http_lines = Vec::new();
        let mut run_lines = Vec::new();
        let mut has_block = false;
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::method => method = Some(self.ident(c)),
                Rule::string => program = Some(self.string(c)),
                Rule::expr if rule == Rule::http_call => first = Some(self.expr(c)),
                Rule::expr => args = Some(self.expr(c)),
                Rule::http_block => {
                    has_block = true;
                    for l in c.into_inner() {
                        let lspan = self.span_of(&l);
                        let line = match l.as_rule() {
                            Rule::respond_header => self
                                .header_line(l)
                                .map(|(name, value)| HttpLine::Header { name, value, span: lspan }),
                            Rule::respond_json => self.child_expr(l).map(|e| HttpLine::Json(e, lspan)),
                            Rule::respond_text => self.child_expr(l).map(|e| HttpLine::Text(e, lspan)),
                            Rule::req_form => self.child_expr(l).map(|e| HttpLine::Form(e, lspan)),
                            Rule::e_timeout => self.child_duration(l).map(|d| HttpLine::Timeout(d, lspan)),
                            Rule::e_retry => self.child_count(l).map(|n| HttpLine::Retry(n, lspan)),
                            Rule::req_sign => {
                                let (provider, secret) = self.sign_line(l);
                                provider.zip(secret).map(|(provider, secret)| HttpLine::Sign {
                                    provider,
                                    secret,
                                    span: lspan,
                                })
                            }
                            _ => None,
                        };
                        http_lines.extend(line);
                    }
                }
                Rule::run_block => {
                    has_block = true;
                    for l in c.into_inner() {
                        let lspan = self.span_of(&l);
                        let line = match l.as_rule() {
                            Rule::run_env => self.header_line(l).map(|(name, value)| RunLine::Env {
                                name,
                                value,
                                span: lspan,
                            }),
                            Rule::run_stdin => self.child_expr(l).map(|e| RunLine::Stdin(e, lspan)),
                            Rule::run_dir => l
                                .into_inner()
                                .find(|x| x.as_rule() == Rule::string)
                                .map(|x| RunLine::Dir(self.string(x), lspan)),
                            Rule::e_timeout => self.child_duration(l).map(|d| RunLine::Timeout(d, lspan)),
                            _ => None,
                        };
                        run_lines.extend(line);
                    }
                }
                _ => {}
            }
        }
        Some(match rule {
            Rule::http_call => {
                Effect::Http(HttpCall { method: method?, url: first?, lines: http_lines, has_block, span })
            }
            _ => Effect::Run(RunCall { program: program?, args, lines: run_lines, has_block, span }),
        })
    }

    pub(super) fn child_duration(&mut self, p: Pair<Rule>) -> Option<Duration> {
        p.into_inner().find(|x| x.as_rule() == Rule::duration).map(|x| self.duration(x))
    }

    pub(super) fn child_count(&mut self, p: Pair<Rule>) -> Option<Count> {
        let c = p.into_inner().find(|x| x.as_rule() == Rule::count)?;
        Some(Count { value: c.as_str().parse().ok(), span: self.span_of(&c) })
    }

    /// `header "Name" = EXPR`, in a response or a test request.
    pub(super) fn header_line(&mut self, p: Pair<Rule>) -> Option<(Str, Expr)> {
        let mut name = None;
        let mut value = None;
        for x in p.into_inner() {
            match x.as_rule() {
                Rule::string => name = Some(self.string(x)),
                Rule::expr => value = Some(self.expr(x)),
                _ => {}
            }
        }
        Some((name?, value?))
    }

    pub(super) fn child_expr(&mut self, p: Pair<Rule>) -> Option<Expr> {
        p.into_inner().find(|x| x.as_rule() == Rule::expr).map(|x| self.expr(x))
    }

    pub(super) fn respond(&mut self, p: Pair<Rule>) -> Respond {
        let span = self.span_of(&p);
        let mut status = 0;
        let mut status_span = span;
        let mut body = RespondBody::Empty;
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::status => {
                    status_span = self.span_of(&c);
                    status = c.as_str().parse::<u64>().unwrap_or(u64::MAX);
                }
                Rule::respond_text => {
                    if let Some(e) = self.child_expr(c) {
                        body = RespondBody::Text(e);
                    }
                }
                Rule::respond_json => {
                    if let Some(e) = self.child_expr(c) {
                        body = RespondBody::Json(e);
                    }
                }
                Rule::respond_block => {
                    let bspan = self.span_of(&c);
                    let mut lines = Vec::new();
                    for l in c.into_inner() {
                        let lspan = self.span_of(&l);
                        match l.as_rule() {
                            Rule::respond_header => {
                                if let Some((name, value)) = self.header_line(l) {
                                    lines.push(RespondLine::Header { name, value, span: lspan });
                                }
                            }
                            Rule::respond_text => {
                                if let Some(e) = self.child_expr(l) {
                                    lines.push(RespondLine::Text(e, lspan));
                                }
                            }
                            Rule::respond_json => {
                                if let Some(e) = self.child_expr(l) {
                                    lines.push(RespondLine::Json(e, lspan));
                                }
                            }
                            _ => {}
                        }
                    }
                    body = RespondBody::Block(lines, bspan);
                }
                _ => {}
            }
        }
        Respond { status, status_span, body, span }
    }
}
