//! A workflow's frame: its trigger settings (path, key, mode, auth, immediate answer), then its
//! extractions and statements in order.

use super::Lower;
use crate::lang::ast::{self, Mode, Span};
use crate::lang::diagnostic::{Diagnostic, Kind};
use crate::lang::ir;
use std::collections::HashMap;

/// What a trigger's settings lower to.
struct Settings<'a> {
    path: String,
    /// The setting that names the path (or the workflow's name), for duplicate reports.
    path_span: Span,
    methods: Vec<http::Method>,
    allow: Vec<ipnet::IpNet>,
    cors: Option<Vec<String>>,
    auth: Option<ir::Auth>,
    /// `auth hmac`'s `signed`, lowered once the extractions are declared.
    signed: Option<super::auth::PendingSigned<'a>>,
    immediate: Option<ir::Respond>,
    concurrency: Option<u32>,
    /// `dedupe EXPR`, lowered once the extractions are declared.
    dedupe: Option<(&'a ast::Expr, std::time::Duration)>,
    /// `debounce EXPR for D [max D]`, lowered once the extractions are declared.
    debounce: Option<(&'a ast::Expr, std::time::Duration, Option<std::time::Duration>, Span)>,
    /// `order by EXPR`, lowered once the extractions are declared.
    order: Option<(&'a ast::Expr, Span)>,
    /// `rate N per D [by EXPR]`, its key lowered once the extractions are declared.
    rate: Option<(u32, std::time::Duration, Option<&'a ast::Expr>)>,
}

/// Most runs a `rate` lets start per window (the store keeps each start's time in the window).
pub(crate) const MAX_RATE: u32 = 10_000;

/// How long a `dedupe` key is remembered by default.
const DEDUPE_WINDOW: std::time::Duration = std::time::Duration::from_secs(86_400);

impl Lower<'_> {
    /// Lowers one workflow; also returns the span that names its URL path (for duplicate reports).
    pub(super) fn workflow(mut self, w: &ast::Workflow) -> (ir::Workflow, Span) {
        let trigger = self.the_trigger(w);
        let mut settings = self.settings(trigger, &w.name);

        // Extracted variables are visible in the whole workflow: declare them all first.
        let mut extracts = Vec::new();
        for item in &w.items {
            if let ast::WfItem::Extract(x) = item {
                for f in &x.fields {
                    extracts.push(self.field(f));
                }
            }
        }

        self.unmet_body_paths(settings.auth.as_ref(), w);
        if let Some(pending) = settings.signed.take() {
            self.signed(&mut settings.auth, pending);
        }
        let dedupe = settings.dedupe.take().map(|(key, window)| {
            let key = self.shown(key, "a dedupe key (kept in the store)");
            ir::Dedupe { key, window }
        });
        let debounce = settings.debounce.take().map(|(key, wait, max, span)| {
            if self.mode != ast::Mode::Async {
                self.err(Kind::WaitInSync, span, "`debounce` in a sync workflow")
                    .set_label("the caller would wait on an open connection")
                    .set_help("make the workflow `mode async`: its caller is answered at once and the run waits without holding anything");
            }
            let key = self.shown(key, "a debounce key (kept in the store)");
            ir::Debounce { key, wait, max }
        });
        let order = settings.order.take().map(|(key, span)| {
            if self.mode != ast::Mode::Async {
                self.err(Kind::WaitInSync, span, "`order by` in a sync workflow")
                    .set_label("the caller would wait on an open connection for the runs before it")
                    .set_help("make the workflow `mode async`: its caller is answered at once and the run waits its turn without holding anything");
            }
            self.shown(key, "an order key (kept in the store)")
        });
        let rate = settings.rate.take().map(|(n, per, key)| ir::Rate {
            n,
            per,
            window_ms: i64::try_from(per.as_millis()).unwrap_or(i64::MAX),
            key: key.map(|k| self.shown(k, "a rate key (kept in the store)")),
        });

        let mut body = Vec::new();
        let mut ended: Option<Span> = None;
        let mut warned = false;
        for item in &w.items {
            if let ast::WfItem::Stmt(s) = item {
                self.stmt_in_block(s, &mut body, &mut ended, &mut warned);
            }
        }

        for (_, span, waited) in std::mem::take(&mut self.callbacks) {
            if !waited {
                self.err(Kind::UnwaitedCallback, span, "this callback is never waited for")
                    .set_label("its URL works, but the run never looks at the call")
                    .set_help("add `let reply = wait cb` where the run should wait for the call");
            }
        }
        crate::lang::moves::mark(&mut body);
        let wf = ir::Workflow {
            name: w.name.name.clone(),
            file: self.file.clone(),
            span: w.name.span,
            path: settings.path,
            mode: self.mode,
            methods: settings.methods,
            allow: settings.allow,
            cors: settings.cors,
            auth: settings.auth,
            immediate: settings.immediate,
            concurrency: settings.concurrency,
            dedupe,
            debounce,
            order,
            rate,
            extracts,
            body,
            slots: self.vars.len(),
        };
        (wf, settings.path_span)
    }

    /// Warns of `body` paths the content its sender posts cannot meet: Twilio posts flat
    /// `application/x-www-form-urlencoded` forms (`From`, `Body`, ...), so a nested path
    /// (`data.object`, `items[0]`) is always `null` there.
    fn unmet_body_paths(&mut self, auth: Option<&ir::Auth>, w: &ast::Workflow) {
        let twilio = matches!(auth, Some(ir::Auth { kind: ir::AuthKind::Signature(s), .. }) if s.scheme == ir::Scheme::Twilio);
        if !twilio {
            return;
        }
        for item in &w.items {
            let ast::WfItem::Extract(x) = item else { continue };
            for f in &x.fields {
                let (ir::Source::Body, Some(path)) = (f.source, &f.path) else { continue };
                let Some(text) = path.literal() else { continue };
                if crate::lang::path::parse(&text).is_ok_and(|segs| segs.len() > 1) {
                    let d = crate::lang::diagnostic::Diagnostic::new(
                        Kind::UnmetBodyPath,
                        self.file,
                        path.span,
                        format!("Twilio posts flat forms: `{text}` is never in one"),
                    )
                    .label("a nested path")
                    .help("Twilio's fields are flat names, e.g. body \"From\" or body \"Body\"");
                    self.push(d);
                }
            }
        }
    }

    /// The workflow's one trigger, first; reports a missing, second or misplaced trigger.
    fn the_trigger<'w>(&mut self, w: &'w ast::Workflow) -> Option<&'w ast::Trigger> {
        let triggers: Vec<&ast::Trigger> = w
            .items
            .iter()
            .filter_map(|i| if let ast::WfItem::Trigger(t) = i { Some(t) } else { None })
            .collect();
        match triggers.as_slice() {
            [] => {
                self.err(
                    Kind::MissingTrigger,
                    w.name.span,
                    format!("workflow `{}` has no trigger", w.name.name),
                )
                .set_label("this workflow cannot be called")
                .set_help("add `trigger webhook { }` as the first line of the workflow");
            }
            [first, rest @ ..] => {
                for t in rest {
                    let d = Diagnostic::new(
                        Kind::DuplicateTrigger,
                        self.file,
                        t.span,
                        "a workflow has exactly one trigger",
                    )
                    .label("second trigger")
                    .also(self.file, first.span, "first trigger")
                    .help("merge the settings into the first `trigger`");
                    self.push(d);
                }
                if !matches!(w.items.first(), Some(ast::WfItem::Trigger(_))) {
                    self.err(
                        Kind::TriggerNotFirst,
                        first.span,
                        "the trigger must come first in the workflow",
                    )
                    .set_label("move this to the top of the workflow")
                    .set_help("write `trigger webhook { ... }` before `extract` and the statements");
                }
            }
        }
        triggers.first().copied()
    }

    /// The trigger's settings: the URL path served, auth and the immediate answer (and the mode,
    /// kept in `self.mode` for the statements).
    fn settings<'a>(&mut self, trigger: Option<&'a ast::Trigger>, name: &ast::Ident) -> Settings<'a> {
        let mut path_setting: Option<(String, Span)> = None;
        let mut key_setting: Option<(String, Span)> = None;
        let mut auth = None;
        let mut signed = None;
        let mut methods = vec![http::Method::POST];
        let mut allow = Vec::new();
        let mut cors = None;
        let mut immediate_ast = None;
        let mut concurrency = None;
        let mut dedupe = None;
        let mut debounce = None;
        let mut order = None;
        let mut rate = None;
        let mut seen: HashMap<&'static str, Span> = HashMap::new();
        if let Some(t) = trigger {
            for s in &t.settings {
                let kind = match s {
                    ast::Setting::Path(..) => "path",
                    ast::Setting::Key(..) => "key",
                    ast::Setting::Mode(..) => "mode",
                    ast::Setting::Methods(..) => "method",
                    ast::Setting::AllowIp(..) => "allow ip",
                    ast::Setting::Cors(..) => "cors",
                    ast::Setting::Auth(_) => "auth",
                    ast::Setting::Respond(_) => "respond",
                    ast::Setting::Concurrency(..) => "concurrency",
                    ast::Setting::Dedupe { .. } => "dedupe",
                    ast::Setting::Debounce { .. } => "debounce",
                    ast::Setting::Order(..) => "order by",
                    ast::Setting::Rate { .. } => "rate",
                };
                if let Some(prev) = seen.insert(kind, s.span()) {
                    let d = Diagnostic::new(
                        Kind::DuplicateSetting,
                        self.file,
                        s.span(),
                        format!("`{kind}` is set twice"),
                    )
                    .label("set again here")
                    .also(self.file, prev, "first set here")
                    .help("keep one of them");
                    self.push(d);
                }
                match s {
                    ast::Setting::Mode(m, _) => self.mode = *m,
                    ast::Setting::Path(p, span) => {
                        path_setting = self.url_path(p).map(|p| (p, *span));
                        if path_setting.as_ref().is_some_and(|(p, _)| p == "/wf" || p.starts_with("/wf/")) {
                            self.err(Kind::ReservedPath, p.span, "paths under `/wf/` are wf's own")
                                .set_label("wf serves callbacks here")
                                .set_help("choose another path, e.g. \"/hooks/...\"");
                            path_setting = None;
                        }
                    }
                    ast::Setting::Key(k, span) => key_setting = self.url_key(k).map(|k| (k, *span)),
                    _ => {}
                }
            }
            for s in &t.settings {
                match s {
                    ast::Setting::Auth(a) => (auth, signed) = self.auth(a),
                    ast::Setting::Methods(list, _) => methods = self.methods(list),
                    ast::Setting::AllowIp(list, _) => allow = self.networks(list),
                    ast::Setting::Cors(list, _) => cors = Some(self.origins(list)),
                    ast::Setting::Respond(r) => immediate_ast = Some(r),
                    ast::Setting::Dedupe { key, window, .. } => {
                        let window = match window {
                            None => DEDUPE_WINDOW,
                            Some(d) => match d.millis.filter(|ms| *ms >= 1_000 && *ms <= 366 * 86_400_000) {
                                Some(ms) => std::time::Duration::from_millis(ms),
                                None => {
                                    self.err(
                                        Kind::InvalidConcurrency,
                                        d.span,
                                        format!("a dedupe window of {} cannot be used", d.text),
                                    )
                                    .set_label("between 1s and 366d")
                                    .set_help("write how long a delivery is remembered, e.g. `window 24h`");
                                    DEDUPE_WINDOW
                                }
                            },
                        };
                        dedupe = Some((key, window));
                    }
                    ast::Setting::Debounce { key, wait, max, span } => {
                        let mut time = |d: &ast::Duration| match d
                            .millis
                            .filter(|ms| (1_000..=super::MAX_WAIT_MS).contains(ms))
                        {
                            Some(ms) => Some(std::time::Duration::from_millis(ms)),
                            None => {
                                self.err(
                                    Kind::WaitTooLong,
                                    d.span,
                                    format!("a debounce of {} cannot be used", d.text),
                                )
                                .set_label("between 1s and 365d")
                                .set_help("write how long a run waits for a newer request, e.g. `for 30s`");
                                None
                            }
                        };
                        let wait = time(wait);
                        let max = max.as_ref().map(&mut time);
                        if let (Some(wait), Some(max)) =
                            (wait, max.unwrap_or(Some(std::time::Duration::ZERO)))
                        {
                            debounce = Some((key, wait, (!max.is_zero()).then_some(max), *span));
                        }
                    }
                    ast::Setting::Order(key, span) => order = Some((key, *span)),
                    ast::Setting::Rate { n, per, key, .. } => {
                        let at_most = n
                            .value
                            .and_then(|v| u32::try_from(v).ok())
                            .filter(|v| (1..=MAX_RATE).contains(v));
                        if at_most.is_none() {
                            self.err(
                                Kind::InvalidConcurrency,
                                n.span,
                                format!("`rate` is between 1 and {MAX_RATE} runs per window"),
                            )
                            .set_label("not a number of runs")
                            .set_help("write how many runs may start per window, e.g. `rate 10 per 1s`");
                        }
                        let per_ms = per.millis.filter(|ms| (1_000..=super::MAX_WAIT_MS).contains(ms));
                        if per_ms.is_none() {
                            self.err(
                                Kind::WaitTooLong,
                                per.span,
                                format!("a rate window of {} cannot be used", per.text),
                            )
                            .set_label("between 1s and 365d")
                            .set_help("write the window the count is for, e.g. `per 1s` or `per 1m`");
                        }
                        if let (Some(n), Some(ms)) = (at_most, per_ms) {
                            rate = Some((n, std::time::Duration::from_millis(ms), key.as_ref()));
                        }
                    }
                    ast::Setting::Concurrency(n, _) => {
                        match n
                            .value
                            .and_then(|v| u32::try_from(v).ok())
                            .filter(|v| (1..=100_000).contains(v))
                        {
                            Some(v) => concurrency = Some(v),
                            None => {
                                self.err(
                                    Kind::InvalidConcurrency,
                                    n.span,
                                    "`concurrency` is between 1 and 100000",
                                )
                                .set_label("not a number of executions")
                                .set_help("write how many executions may run at once, e.g. `concurrency 4`");
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        let immediate = match immediate_ast {
            Some(r) if self.mode == Mode::Sync => {
                self.err(Kind::TriggerRespondInSync, r.span, "a trigger-level `respond` needs `mode async`")
                    .set_label("a sync workflow answers with the `respond` statement it reaches")
                    .set_help("add `mode async`, or move this `respond` into the workflow's statements");
                None
            }
            Some(r) => {
                self.const_only = Some("the immediate response of an async trigger");
                let out = self.respond(r);
                self.const_only = None;
                Some(out)
            }
            None => None,
        };

        let (path, path_span) = match (path_setting, key_setting) {
            (Some((p, span)), _) => (p, span),
            (None, Some((k, span))) => (format!("/api/webhook:trigger/{k}"), span),
            (None, None) => (format!("/api/webhook:trigger/{}", name.name), name.span),
        };
        Settings {
            path,
            path_span,
            methods,
            allow,
            cors,
            auth,
            signed,
            immediate,
            concurrency,
            dedupe,
            debounce,
            order,
            rate,
        }
    }

    pub(super) fn literal(&mut self, s: &ast::Str, what: &str) -> Option<String> {
        let lit = s.literal();
        if lit.is_none() {
            self.err(Kind::NotLiteral, s.span, format!("{what} must be a plain string"))
                .set_label("`${...}` is not allowed here")
                .set_help("write the value literally; escape a dollar sign as `\\$`");
        }
        lit
    }

    pub(super) fn url_path(&mut self, s: &ast::Str) -> Option<String> {
        let p = self.literal(s, "a path")?;
        if crate::lang::url::path_problem(&p).is_some() {
            self.err(Kind::InvalidPath, s.span, format!("`{p}` is not a valid URL path"))
                .set_label("not a URL path")
                .set_help("a path starts with `/` and has no spaces, `?` or `#`, e.g. \"/hooks/payment\"");
            return None;
        }
        Some(p)
    }

    pub(super) fn url_key(&mut self, s: &ast::Str) -> Option<String> {
        let k = self.literal(s, "a key")?;
        if !crate::lang::url::is_key(&k) {
            self.err(Kind::InvalidKey, s.span, format!("`{k}` is not a valid key"))
                .set_label("not URL-safe")
                .set_help("a key uses letters, digits, `-`, `_`, `.` and `~`");
            return None;
        }
        Some(k)
    }
}
