//! `wf fmt`: prints the AST in the one canonical style, putting every comment back where it was
//! (on its own line, or at the end of a line) and keeping blank-line paragraphs.

use crate::lang::ast::*;

/// Lines longer than this break object and array literals across lines.
const WIDTH: usize = 100;

/// Formats a parsed file. `src` is the text it was parsed from (for comments and number literals).
pub fn format(file: &File, src: &str) -> String {
    let mut p =
        Printer { src, comments: &file.comments, next: 0, out: String::new(), indent: 0, last_end: 0 };
    for (i, item) in file.items.iter().enumerate() {
        if i > 0 {
            p.out.push('\n');
        }
        p.leading(item.span().start);
        match item {
            Item::Workflow(w) => p.workflow(w),
            Item::Test(t) => p.test(t),
        }
    }
    p.leading(usize::MAX);
    while p.out.ends_with("\n\n") {
        p.out.pop();
    }
    p.out
}

struct Printer<'a> {
    src: &'a str,
    comments: &'a [Comment],
    /// The next comment not yet printed.
    next: usize,
    out: String,
    indent: usize,
    /// Source position of the last thing printed (to find blank lines between things).
    last_end: usize,
}

impl Printer<'_> {
    fn pad(&mut self) {
        for _ in 0..self.indent {
            self.out.push_str("  ");
        }
    }

    /// Keeps one blank line where the source had one or more before `start`.
    fn paragraph(&mut self, start: usize) {
        let gap = self.src.get(self.last_end.min(start)..start).unwrap_or("");
        let lines: Vec<&str> = gap.split('\n').collect();
        let blank =
            lines.len() >= 3 && lines.iter().skip(1).take(lines.len() - 2).any(|l| l.trim().is_empty());
        if blank && !self.out.is_empty() && !self.out.ends_with("{\n") && !self.out.ends_with("\n\n") {
            self.out.push('\n');
        }
    }

    /// Prints, on their own lines, the comments that start before `pos`.
    fn leading(&mut self, pos: usize) {
        while let Some(c) = self.comments.get(self.next) {
            if c.span.start >= pos {
                break;
            }
            self.paragraph(c.span.start);
            self.pad();
            self.out.push('#');
            self.out.push_str(c.text.trim_end());
            self.out.push('\n');
            self.last_end = c.span.end;
            self.next += 1;
        }
    }

    /// Starts a line for a thing at `start`: comments before it, a kept blank line, indentation.
    fn open(&mut self, start: usize) {
        self.leading(start);
        self.paragraph(start);
        self.pad();
    }

    /// Ends the line of a thing that ended at `end`, with its trailing comment if it has one.
    fn close(&mut self, end: usize) {
        if let Some(c) = self.comments.get(self.next) {
            let between = self.src.get(end.min(c.span.start)..c.span.start).unwrap_or("\n");
            if c.span.start >= end && !between.contains('\n') {
                self.out.push_str(" #");
                self.out.push_str(c.text.trim_end());
                self.next += 1;
                self.last_end = c.span.end;
                self.out.push('\n');
                return;
            }
        }
        self.last_end = self.last_end.max(end);
        self.out.push('\n');
    }

    /// Prints the comments left inside a block before its closing `}` (at `end`), then `}`.
    fn close_block(&mut self, end: usize) {
        let close = end.saturating_sub(1);
        self.indent += 1;
        self.leading(close);
        self.indent -= 1;
        self.pad();
        self.out.push('}');
        self.close(end);
    }

    fn has_comments_in(&self, span: Span) -> bool {
        self.comments
            .get(self.next..)
            .unwrap_or(&[])
            .iter()
            .any(|c| c.span.start > span.start && c.span.start < span.end)
    }

    fn column(&self) -> usize {
        self.out.len() - self.out.rfind('\n').map_or(0, |i| i + 1)
    }

    fn workflow(&mut self, w: &Workflow) {
        self.open(w.span.start);
        self.out.push_str(&format!("workflow {} {{\n", w.name.name));
        self.last_end = w.name.span.end;
        self.indent += 1;
        for item in &w.items {
            match item {
                WfItem::Trigger(t) => self.trigger(t),
                WfItem::Extract(x) => self.extract(x),
                WfItem::Stmt(s) => self.stmt(s),
            }
        }
        self.indent -= 1;
        self.close_block(w.span.end);
    }

    /// Prints `head {` and indents, or `head {}` when the block is empty (then returns false).
    fn open_block(&mut self, head: &str, span: Span, empty: bool) -> bool {
        self.open(span.start);
        self.out.push_str(head);
        if empty && !self.has_comments_in(span) {
            self.out.push_str(" {}");
            self.close(span.end);
            return false;
        }
        self.out.push_str(" {\n");
        self.indent += 1;
        true
    }

    fn trigger(&mut self, t: &Trigger) {
        if !self.open_block("trigger webhook", t.span, t.settings.is_empty()) {
            return;
        }
        for s in &t.settings {
            match s {
                Setting::Path(p, span) => self.line(span, &format!("path {}", self.str_lit(p))),
                Setting::Key(k, span) => self.line(span, &format!("key {}", self.str_lit(k))),
                Setting::Mode(m, span) => {
                    self.line(span, if *m == Mode::Async { "mode async" } else { "mode sync" })
                }
                Setting::Dedupe { key, window, span } => {
                    let mut text = format!("dedupe {}", self.expr(key));
                    if let Some(w) = window {
                        text.push_str(&format!(" window {}", w.text));
                    }
                    self.line(span, &text);
                }
                Setting::Debounce { key, wait, max, span } => {
                    let mut text = format!("debounce {} for {}", self.expr(key), wait.text);
                    if let Some(m) = max {
                        text.push_str(&format!(" max {}", m.text));
                    }
                    self.line(span, &text);
                }
                Setting::Order(key, span) => {
                    let text = format!("order by {}", self.expr(key));
                    self.line(span, &text);
                }
                Setting::Rate { n, per, key, span } => {
                    let count = self.src.get(n.span.start..n.span.end).unwrap_or("1");
                    let mut text = format!("rate {count} per {}", per.text);
                    if let Some(k) = key {
                        text.push_str(&format!(" by {}", self.expr(k)));
                    }
                    self.line(span, &text);
                }
                Setting::Concurrency(n, span) => {
                    let text =
                        format!("concurrency {}", self.src.get(n.span.start..n.span.end).unwrap_or("1"));
                    self.line(span, &text);
                }
                Setting::Methods(list, span) => {
                    let text = format!("method {}", self.str_list(list));
                    self.line(span, &text);
                }
                Setting::AllowIp(list, span) => {
                    let text = format!("allow ip {}", self.str_list(list));
                    self.line(span, &text);
                }
                Setting::Cors(list, span) => {
                    if list.is_empty() {
                        self.line(span, "cors { }");
                    } else {
                        self.open(span.start);
                        self.out.push_str("cors {\n");
                        self.indent += 1;
                        let text = format!("origin {}", self.str_list(list));
                        let first = list.first().map_or(*span, |s| s.span);
                        self.line(&first, &text);
                        self.indent -= 1;
                        self.close_block(span.end);
                    }
                }
                Setting::Auth(a) => self.auth(a),
                Setting::Respond(r) => self.respond(r),
            }
        }
        self.indent -= 1;
        self.close_block(t.span.end);
    }

    fn auth(&mut self, a: &Auth) {
        match &a.form {
            AuthForm::Basic { user, password } => {
                self.open(a.span.start);
                self.out.push_str("auth basic {\n");
                self.indent += 1;
                let u = format!("user {}", self.expr(user));
                self.line(&user.span, &u);
                let p = format!("password {}", self.expr(password));
                self.line(&password.span, &p);
                self.indent -= 1;
                self.close_block(a.span.end);
            }
            AuthForm::Header { name, secret } => {
                let text = format!("auth header {} {}", self.str_lit(name), self.expr(secret));
                self.line(&a.span, &text);
            }
            AuthForm::Token { scheme, secret, tolerance, url, public_key } => {
                let mut text = if *public_key {
                    format!("auth {} {{ public_key {} }}", scheme.name, self.expr(secret))
                } else {
                    format!("auth {} {}", scheme.name, self.expr(secret))
                };
                if let Some(d) = tolerance {
                    text.push_str(&format!(" tolerance {}", d.text));
                }
                if let Some(u) = url {
                    text.push_str(&format!(" url {}", self.str_lit(u)));
                }
                self.line(&a.span, &text);
            }
            AuthForm::Hmac(lines) => {
                self.open(a.span.start);
                self.out.push_str("auth hmac {\n");
                self.indent += 1;
                for l in lines {
                    let text = match l {
                        HmacLine::Header(s, _) => format!("header {}", self.str_lit(s)),
                        HmacLine::Prefix(s, _) => format!("prefix {}", self.str_lit(s)),
                        HmacLine::Algorithm(i, _) => format!("algorithm {}", i.name),
                        HmacLine::Encoding(i, _) => format!("encoding {}", i.name),
                        HmacLine::Secret(e, _) => format!("secret {}", self.expr(e)),
                        HmacLine::Signed(e, _) => format!("signed {}", self.expr(e)),
                    };
                    self.line(&l.span(), &text);
                }
                self.indent -= 1;
                self.close_block(a.span.end);
            }
        }
    }

    /// Strings separated by spaces.
    fn str_list(&self, list: &[Str]) -> String {
        list.iter().map(|s| self.str_lit(s)).collect::<Vec<_>>().join(" ")
    }

    /// One line holding `text` for a thing with this span.
    fn line(&mut self, span: &Span, text: &str) {
        self.open(span.start);
        self.out.push_str(text);
        self.close(span.end);
    }

    /// `KEYWORD EXPR` on one line.
    fn keyword_line(&mut self, keyword: &str, e: &Expr, span: &Span) {
        let text = format!("{keyword} {}", self.expr(e));
        self.line(span, &text);
    }

    /// `KEYWORD EXPR`, where a long object or array literal may break across lines.
    fn keyword_block(&mut self, keyword: &str, e: &Expr, span: &Span) {
        self.open(span.start);
        self.out.push_str(keyword);
        self.out.push(' ');
        self.expr_block(e);
        self.close(span.end);
    }

    fn extract(&mut self, x: &Extract) {
        if !self.open_block("extract", x.span, x.fields.is_empty()) {
            return;
        }
        let width = x.fields.iter().map(|f| f.name.name.len()).max().unwrap_or(0);
        for f in &x.fields {
            let mut text = format!("{:width$} = {}", f.name.name, f.source.as_str());
            if let Some(p) = &f.path {
                text.push(' ');
                text.push_str(&self.str_lit(p));
            }
            if let Some(t) = &f.ty {
                text.push_str(&format!(" as {}", t.name));
            }
            if f.required.is_some() {
                text.push_str(" required");
            }
            if let Some(d) = &f.default {
                text.push_str(&format!(" default {}", self.expr(d)));
            }
            self.line(&f.span, &text);
        }
        self.indent -= 1;
        self.close_block(x.span.end);
    }

    fn block(&mut self, b: &Block) {
        self.out.push_str("{\n");
        self.last_end = b.span.start + 1;
        self.indent += 1;
        for s in &b.stmts {
            self.stmt(s);
        }
        self.indent -= 1;
        let close = b.span.end.saturating_sub(1);
        self.indent += 1;
        self.leading(close);
        self.indent -= 1;
        self.pad();
        self.out.push('}');
        self.last_end = b.span.end;
    }

    fn stmt(&mut self, s: &Stmt) {
        match s {
            Stmt::Let { name, value, span } => {
                self.open(span.start);
                self.out.push_str(&format!("let {} = ", name.name));
                self.expr_block(value);
                self.close(span.end);
            }
            Stmt::Log(e, span) => self.keyword_line("log", e, span),
            Stmt::Fail(e, span) => self.keyword_line("fail", e, span),
            Stmt::Sleep(crate::lang::ast::SleepFor::Fixed(d), span) => {
                self.line(span, &format!("sleep {}", d.text))
            }
            Stmt::Sleep(crate::lang::ast::SleepFor::Seconds(e), span) => self.keyword_line("sleep", e, span),
            Stmt::Respond(r) => self.respond(r),
            Stmt::Effect { name, effect, span } => {
                self.open(span.start);
                if let Some(n) = name {
                    self.out.push_str(&format!("let {} = ", n.name));
                }
                self.effect(effect);
                self.close(span.end);
            }
            Stmt::If(i) => {
                self.open(i.span.start);
                for (n, (cond, body)) in i.branches.iter().enumerate() {
                    if n > 0 {
                        self.out.push_str(" else if ");
                    } else {
                        self.out.push_str("if ");
                    }
                    let c = self.expr(cond);
                    self.out.push_str(&c);
                    self.out.push(' ');
                    self.block(body);
                }
                if let Some(b) = &i.otherwise {
                    self.out.push_str(" else ");
                    self.block(b);
                }
                self.close(i.span.end);
            }
            Stmt::For { key, value, iter, parallel, body, span } => {
                self.open(span.start);
                match key {
                    Some(k) => self.out.push_str(&format!("for {}, {} in ", k.name, value.name)),
                    None => self.out.push_str(&format!("for {} in ", value.name)),
                }
                let it = self.expr(iter);
                self.out.push_str(&it);
                if let Some(n) = parallel {
                    let count = self.src.get(n.span.start..n.span.end).unwrap_or("1");
                    self.out.push_str(&format!(" parallel {count}"));
                }
                self.out.push(' ');
                self.block(body);
                self.close(span.end);
            }
        }
    }

    /// An `http` or `run` call from the current position; its block, if any, one line a setting.
    fn effect(&mut self, e: &Effect) {
        match e {
            Effect::Http(h) => {
                self.out.push_str(&format!("http {} ", h.method.name));
                self.expr_block(&h.url);
                if !h.has_block {
                    return;
                }
                self.out.push_str(" {\n");
                self.indent += 1;
                for l in &h.lines {
                    match l {
                        HttpLine::Header { name, value, span } => {
                            let text = format!("header {} = {}", self.str_lit(name), self.expr(value));
                            self.line(span, &text);
                        }
                        HttpLine::Json(e, span) => self.keyword_block("json", e, span),
                        HttpLine::Text(e, span) => self.keyword_line("text", e, span),
                        HttpLine::Form(e, span) => self.keyword_block("form", e, span),
                        HttpLine::Timeout(d, span) => self.line(span, &format!("timeout {}", d.text)),
                        HttpLine::Sign { provider, secret, span } => {
                            let text = format!("sign {} {}", provider.name, self.expr(secret));
                            self.line(span, &text);
                        }
                        HttpLine::Retry(n, span) => {
                            let text =
                                format!("retry {}", self.src.get(n.span.start..n.span.end).unwrap_or("0"));
                            self.line(span, &text);
                        }
                    }
                }
                self.indent -= 1;
                self.end_inner_block(h.span.end);
            }
            Effect::Run(r) => {
                self.out.push_str(&format!("run {}", self.str_lit(&r.program)));
                if let Some(a) = &r.args {
                    self.out.push(' ');
                    self.expr_block(a);
                }
                if !r.has_block {
                    return;
                }
                self.out.push_str(" {\n");
                self.indent += 1;
                for l in &r.lines {
                    match l {
                        RunLine::Env { name, value, span } => {
                            let text = format!("env {} = {}", self.str_lit(name), self.expr(value));
                            self.line(span, &text);
                        }
                        RunLine::Stdin(e, span) => self.keyword_block("stdin", e, span),
                        RunLine::Dir(d, span) => self.line(span, &format!("dir {}", self.str_lit(d))),
                        RunLine::Timeout(d, span) => self.line(span, &format!("timeout {}", d.text)),
                    }
                }
                self.indent -= 1;
                self.end_inner_block(r.span.end);
            }
            Effect::Callback { timeout: None, .. } => self.out.push_str("callback"),
            Effect::Callback { timeout: Some(d), .. } => {
                self.out.push_str(&format!("callback timeout {}", d.text))
            }
            Effect::Wait { of, .. } => {
                self.out.push_str("wait ");
                self.expr_block(of);
            }
        }
    }

    /// Closes a block that ends a statement's line (`}` at `end`, comments inside kept); the
    /// caller closes the line.
    fn end_inner_block(&mut self, end: usize) {
        let close = end.saturating_sub(1);
        self.indent += 1;
        self.leading(close);
        self.indent -= 1;
        self.pad();
        self.out.push('}');
    }

    fn mock(&mut self, m: &Mock) {
        match m {
            Mock::Http { method, url, answer, span } => {
                self.open(span.start);
                self.out.push_str(&format!("mock http {} {} {{\n", method.name, self.str_lit(url)));
                self.indent += 1;
                match answer {
                    MockAnswer::Respond(r) => self.respond(r),
                    MockAnswer::Fail(e, fspan) => self.keyword_line("fail", e, fspan),
                }
                self.indent -= 1;
                self.close_block(span.end);
            }
            Mock::Callback { call: None, span } => {
                self.open(span.start);
                self.out.push_str("mock callback timeout");
                self.close(span.end);
            }
            Mock::Callback { call: Some((kind, e)), span } => {
                self.open(span.start);
                self.out.push_str("mock callback {\n");
                self.indent += 1;
                self.keyword_block(kind.word(), e, &e.span);
                self.indent -= 1;
                self.close_block(span.end);
            }
            Mock::Run { program, code, stdout, stderr, span } => {
                self.open(span.start);
                self.out.push_str(&format!("mock run {} {{\n", self.str_lit(program)));
                self.indent += 1;
                for (word, e) in [("code", code), ("stdout", stdout), ("stderr", stderr)] {
                    if let Some(e) = e {
                        self.keyword_block(word, e, &e.span);
                    }
                }
                self.indent -= 1;
                self.close_block(span.end);
            }
        }
    }

    fn respond(&mut self, r: &Respond) {
        self.open(r.span.start);
        self.out.push_str(&format!("respond {}", r.status));
        match &r.body {
            RespondBody::Empty => {}
            RespondBody::Text(e) => {
                let t = self.expr(e);
                self.out.push_str(&format!(" text {t}"));
            }
            RespondBody::Json(e) => {
                self.out.push_str(" json ");
                self.expr_block(e);
            }
            RespondBody::Block(lines, span) => {
                self.out.push_str(" {\n");
                self.indent += 1;
                for l in lines {
                    match l {
                        RespondLine::Header { name, value, span } => {
                            let text = format!("header {} = {}", self.str_lit(name), self.expr(value));
                            self.line(span, &text);
                        }
                        RespondLine::Text(e, span) => self.keyword_line("text", e, span),
                        RespondLine::Json(e, span) => self.keyword_block("json", e, span),
                    }
                }
                self.indent -= 1;
                self.end_inner_block(span.end);
            }
        }
        self.close(r.span.end);
    }

    fn test(&mut self, t: &Test) {
        self.open(t.span.start);
        self.out.push_str(&format!("test {} {{\n", self.str_lit(&t.name)));
        self.last_end = t.name.span.end;
        self.indent += 1;
        let r = &t.request;
        let mut mocks = t.mocks.iter().peekable();
        while let Some(m) = mocks.next_if(|m| m.span().start < r.span.start) {
            self.mock(m);
        }
        self.open(r.span.start);
        self.out.push_str(&format!("request {} {}", r.method.name, self.str_lit(&r.url)));
        if r.has_block {
            self.out.push_str(" {\n");
            self.indent += 1;
            for l in &r.lines {
                match l {
                    RequestLine::Auth { user, password, span } => {
                        let text = format!("auth basic {} {}", self.expr(user), self.expr(password));
                        self.line(span, &text);
                    }
                    RequestLine::Header { name, value, span } => {
                        let text = format!("header {} = {}", self.str_lit(name), self.expr(value));
                        self.line(span, &text);
                    }
                    RequestLine::Json(e, span) => self.keyword_block("json", e, span),
                    RequestLine::Text(e, span) => self.keyword_line("text", e, span),
                    RequestLine::File { kind, path, span } => {
                        let text = format!("{} file {}", kind.word(), self.str_lit(path));
                        self.line(span, &text);
                    }
                    RequestLine::Form(e, span) => self.keyword_block("form", e, span),
                    RequestLine::Sign { provider, secret, span } => {
                        let text = format!("sign {} {}", provider.name, self.expr(secret));
                        self.line(span, &text);
                    }
                    RequestLine::ContentType(s, span) => {
                        let text = format!("content_type {}", self.str_lit(s));
                        self.line(span, &text);
                    }
                }
            }
            self.indent -= 1;
            self.close_block(r.span.end);
        } else {
            self.close(r.span.end);
        }
        for e in &t.expects {
            while let Some(m) = mocks.next_if(|m| m.span().start < e.span.start) {
                self.mock(m);
            }
            self.keyword_block("expect", e, &e.span);
        }
        for m in mocks {
            self.mock(m);
        }
        self.indent -= 1;
        self.close_block(t.span.end);
    }

    /// Writes an expression at the current position, breaking long (or commented) object and
    /// array literals one entry per line.
    fn expr_block(&mut self, e: &Expr) {
        let one_line = self.expr(e);
        let fits = self.column() + one_line.len() <= WIDTH && !self.has_comments_in(e.span);
        match &e.kind {
            ExprKind::Object(entries) if !fits && !entries.is_empty() => {
                self.broken_list(('{', '}'), entries, e.span.end, |p, (k, v)| {
                    let (key, start) = match k {
                        ObjKey::Name(i) => (i.name.clone(), i.span.start),
                        ObjKey::Str(s) => (p.str_lit(s), s.span.start),
                    };
                    p.open(start);
                    p.out.push_str(&key);
                    p.out.push_str(": ");
                    v
                });
            }
            ExprKind::Array(items) if !fits && !items.is_empty() => {
                self.broken_list(('[', ']'), items, e.span.end, |p, v| {
                    p.open(v.span.start);
                    v
                });
            }
            _ => self.out.push_str(&one_line),
        }
    }

    /// An object or array literal one entry per line; `head` starts an entry's line (key and all)
    /// and gives back the value to print after it.
    fn broken_list<'e, T>(
        &mut self,
        (open, close): (char, char),
        entries: &'e [T],
        end: usize,
        head: impl Fn(&mut Self, &'e T) -> &'e Expr,
    ) {
        self.out.push(open);
        self.out.push('\n');
        self.indent += 1;
        for entry in entries {
            let v = head(self, entry);
            self.expr_block(v);
            self.out.push(',');
            self.close(v.span.end);
        }
        self.indent -= 1;
        self.leading_inside(end);
        self.pad();
        self.out.push(close);
    }

    fn leading_inside(&mut self, end: usize) {
        self.indent += 1;
        self.leading(end.saturating_sub(1));
        self.indent -= 1;
    }

    /// An expression on one line.
    fn expr(&self, e: &Expr) -> String {
        match &e.kind {
            ExprKind::Null => "null".into(),
            ExprKind::Bool(b) => b.to_string(),
            ExprKind::Number(n) => {
                self.src.get(e.span.start..e.span.end).map_or_else(|| n.to_string(), str::to_string)
            }
            ExprKind::Str(s) => self.str_lit(s),
            ExprKind::Array(items) => {
                format!("[{}]", items.iter().map(|x| self.expr(x)).collect::<Vec<_>>().join(", "))
            }
            ExprKind::Comprehension { elem, name, iter, cond } => {
                let filter = cond.as_ref().map(|c| format!(" if {}", self.expr(c))).unwrap_or_default();
                format!("[{} for {} in {}{filter}]", self.expr(elem), name.name, self.expr(iter))
            }
            ExprKind::Object(entries) if entries.is_empty() => "{}".into(),
            ExprKind::Object(entries) => {
                let parts: Vec<String> = entries
                    .iter()
                    .map(|(k, v)| {
                        let key = match k {
                            ObjKey::Name(i) => i.name.clone(),
                            ObjKey::Str(s) => self.str_lit(s),
                        };
                        format!("{key}: {}", self.expr(v))
                    })
                    .collect();
                format!("{{ {} }}", parts.join(", "))
            }
            ExprKind::Var(i) => i.name.clone(),
            ExprKind::Field(b, n) => format!("{}.{}", self.expr(b), n.name),
            ExprKind::Index(b, i) => format!("{}[{}]", self.expr(b), self.expr(i)),
            ExprKind::Call(n, args) => {
                format!("{}({})", n.name, args.iter().map(|a| self.expr(a)).collect::<Vec<_>>().join(", "))
            }
            ExprKind::Unary(UnOp::Not, x) => format!("!{}", self.expr(x)),
            ExprKind::Unary(UnOp::Neg, x) => format!("-{}", self.expr(x)),
            ExprKind::Binary(op, l, r) => format!("{} {} {}", self.expr(l), op.as_str(), self.expr(r)),
            ExprKind::Paren(x) => format!("({})", self.expr(x)),
        }
    }

    fn str_lit(&self, s: &Str) -> String {
        let mut out = String::from("\"");
        for part in &s.parts {
            match part {
                StrPart::Lit(t) => crate::lang::quote::escape_into(t, &mut out),
                StrPart::Expr(e) => {
                    out.push_str("${");
                    out.push_str(&self.expr(e));
                    out.push('}');
                }
            }
        }
        out.push('"');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::format;
    use crate::lang::diagnostic::SourceFile;

    fn fmt(src: &str) -> String {
        let f = SourceFile::new("t.wf", src);
        let ast = crate::lang::parser::parse(&f).expect("parses");
        format(&ast, src)
    }

    #[test]
    fn canonical_style_with_comments() {
        let src = "# head\nworkflow   w{trigger webhook{path \"/p\"   # the path\n}\nextract{a=body \"a\" as number\n  longer_name = query \"q\" required}\n\n\n# about b\nlet b=a+1 # trailing\nif b>1{respond 200 json {ok:true}}else{fail \"no\"}}\ntest \"t\" { request POST \"/p\" expect status == 200 }";
        let out = fmt(src);
        let expected = "# head\nworkflow w {\n  trigger webhook {\n    path \"/p\" # the path\n  }\n  extract {\n    a           = body \"a\" as number\n    longer_name = query \"q\" required\n  }\n\n  # about b\n  let b = a + 1 # trailing\n  if b > 1 {\n    respond 200 json { ok: true }\n  } else {\n    fail \"no\"\n  }\n}\n\ntest \"t\" {\n  request POST \"/p\"\n  expect status == 200\n}\n";
        assert_eq!(out, expected);
        assert_eq!(fmt(&out), out, "idempotent");
    }

    #[test]
    fn strings_are_re_escaped() {
        let src = r#"workflow w { trigger webhook {} log "a\"b\\c\n\${x} ${1 + 2} é" }"#;
        let out = fmt(src);
        assert!(out.contains(r#"log "a\"b\\c\n\${x} ${1 + 2} é""#), "{out}");
        assert_eq!(fmt(&out), out);
    }

    /// The parsed program without positions, to compare before and after formatting.
    fn shape(src: &str) -> Option<String> {
        let ast = crate::lang::parser::parse(&SourceFile::new("t.wf", src)).ok()?;
        let spans = regex::Regex::new(r"Span \{ start: \d+, end: \d+ \}").ok()?;
        Some(spans.replace_all(&format!("{:?}", ast.items), "_").into_owned())
    }

    #[test]
    fn formatting_is_idempotent_and_keeps_the_program() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let files =
            crate::lang::loader::find_files(&[root.join("examples"), root.join("tests")]).expect("files");
        let mut checked = 0;
        for path in files {
            let Ok(src) = std::fs::read_to_string(&path) else { continue };
            let Some(before) = shape(&src) else { continue };
            let once = fmt(&src);
            assert_eq!(shape(&once).as_deref(), Some(before.as_str()), "{} changes meaning", path.display());
            assert_eq!(fmt(&once), once, "{} is not idempotent", path.display());
            let comments = crate::lang::prescan::scan(&src).comments.len();
            assert_eq!(
                crate::lang::prescan::scan(&once).comments.len(),
                comments,
                "{} loses comments",
                path.display()
            );
            checked += 1;
        }
        assert!(checked >= 20, "only {checked} files checked");
    }

    #[test]
    fn long_literals_break_one_entry_per_line() {
        let src = r#"workflow w { trigger webhook {} respond 200 json { first_field: "aaaaaaaaaaaaaaaaaaaa", second_field: "bbbbbbbbbbbbbbbbbbbbbbbbb", third: [1, 2, 3] } }"#;
        let out = fmt(src);
        assert!(out.contains("respond 200 json {\n    first_field: \"aaaaaaaaaaaaaaaaaaaa\",\n"), "{out}");
        assert_eq!(fmt(&out), out);
    }
}
