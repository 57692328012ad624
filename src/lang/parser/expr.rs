//! Expressions: operators by binding strength (bounded in depth), operands, calls, strings.

use super::*;

impl Builder<'_> {
    pub(super) fn string(&mut self, p: Pair<Rule>) -> Str {
        let span = self.span_of(&p);
        let mut parts: Vec<StrPart> = Vec::new();
        let push_lit = |parts: &mut Vec<StrPart>, s: &str| {
            if let Some(StrPart::Lit(last)) = parts.last_mut() {
                last.push_str(s);
            } else {
                parts.push(StrPart::Lit(s.to_string()));
            }
        };
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::str_text => push_lit(&mut parts, c.as_str()),
                Rule::str_escape => {
                    let esc = c.as_str();
                    let decoded = match esc.as_bytes().get(1) {
                        Some(b'n') => '\n',
                        Some(b't') => '\t',
                        Some(b'r') => '\r',
                        Some(b'u') => {
                            let hex = esc.get(3..esc.len().saturating_sub(1)).unwrap_or("");
                            match u32::from_str_radix(hex, 16).ok().and_then(char::from_u32) {
                                Some(ch) => ch,
                                None => {
                                    self.diags.push(
                                        Diagnostic::new(
                                            Kind::InvalidEscape,
                                            self.file,
                                            self.span_of(&c),
                                            "invalid unicode escape",
                                        )
                                        .label("not a Unicode scalar value")
                                        .help("use a code point between 0 and 10FFFF, outside D800–DFFF"),
                                    );
                                    '\u{FFFD}'
                                }
                            }
                        }
                        Some(&other) => other as char,
                        None => '\\',
                    };
                    let mut buf = [0u8; 4];
                    push_lit(&mut parts, decoded.encode_utf8(&mut buf));
                }
                Rule::interp => {
                    if let Some(e) = self.child_expr(c) {
                        parts.push(StrPart::Expr(e));
                    }
                }
                _ => {}
            }
        }
        Str { parts, span }
    }

    pub(super) fn expr(&mut self, p: Pair<Rule>) -> Expr {
        self.expr_d(p).0
    }

    pub(super) fn too_deep(&mut self, span: Span) -> (Expr, usize) {
        self.diags.push(
            Diagnostic::new(Kind::NestingTooDeep, self.file, span, "nesting too deep")
                .label(format!("this expression is more than {MAX_EXPR_DEPTH} levels deep"))
                .help("split the expression with `let`"),
        );
        (Expr { kind: ExprKind::Null, span }, 1)
    }

    /// Builds an expression and returns its depth, applying precedence to the flat operator list.
    pub(super) fn expr_d(&mut self, p: Pair<Rule>) -> (Expr, usize) {
        let mut operands: Vec<(Expr, usize)> = Vec::new();
        let mut ops: Vec<BinOp> = Vec::new();
        for c in p.into_inner() {
            let op = match c.as_rule() {
                Rule::operand => {
                    let o = self.operand(c);
                    operands.push(o);
                    continue;
                }
                Rule::op_coalesce => BinOp::Coalesce,
                Rule::op_or => BinOp::Or,
                Rule::op_and => BinOp::And,
                Rule::op_eq => BinOp::Eq,
                Rule::op_ne => BinOp::Ne,
                Rule::op_lt => BinOp::Lt,
                Rule::op_le => BinOp::Le,
                Rule::op_gt => BinOp::Gt,
                Rule::op_ge => BinOp::Ge,
                Rule::op_in => BinOp::In,
                Rule::op_add => BinOp::Add,
                Rule::op_sub => BinOp::Sub,
                Rule::op_mul => BinOp::Mul,
                Rule::op_div => BinOp::Div,
                _ => BinOp::Mod,
            };
            while let Some(&top) = ops.last() {
                if top.precedence() < op.precedence() {
                    break;
                }
                ops.pop();
                self.reduce(&mut operands, top);
            }
            ops.push(op);
        }
        while let Some(top) = ops.pop() {
            self.reduce(&mut operands, top);
        }
        operands.pop().unwrap_or((Expr { kind: ExprKind::Null, span: Span::default() }, 1))
    }

    pub(super) fn reduce(&mut self, operands: &mut Vec<(Expr, usize)>, op: BinOp) {
        let (Some((rhs, rd)), Some((lhs, ld))) = (operands.pop(), operands.pop()) else {
            return;
        };
        let span = Span::new(lhs.span.start, rhs.span.end);
        let depth = 1 + ld.max(rd);
        if depth > MAX_EXPR_DEPTH {
            let out = self.too_deep(span);
            operands.push(out);
            return;
        }
        operands.push((Expr { kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)), span }, depth));
    }

    pub(super) fn operand(&mut self, p: Pair<Rule>) -> (Expr, usize) {
        let mut prefixes = Vec::new();
        let mut current: Option<(Expr, usize)> = None;
        for c in p.into_inner() {
            let cspan = self.span_of(&c);
            match c.as_rule() {
                Rule::op_not => prefixes.push((UnOp::Not, cspan.start)),
                Rule::op_neg => prefixes.push((UnOp::Neg, cspan.start)),
                Rule::field_access => {
                    let Some((base, d)) = current.take() else {
                        continue;
                    };
                    let name = c.into_inner().next().map(|x| self.ident(x));
                    let name = name.unwrap_or(Ident { name: String::new(), span: cspan });
                    let span = Span::new(base.span.start, cspan.end);
                    current = Some(self.deeper(ExprKind::Field(Box::new(base), name), span, d + 1));
                }
                Rule::index_access => {
                    let Some((base, d)) = current.take() else {
                        continue;
                    };
                    let idx = c.into_inner().find(|x| x.as_rule() == Rule::expr).map(|x| self.expr_d(x));
                    let (idx, id) = idx.unwrap_or((Expr { kind: ExprKind::Null, span: cspan }, 1));
                    let span = Span::new(base.span.start, cspan.end);
                    current = Some(self.deeper(
                        ExprKind::Index(Box::new(base), Box::new(idx)),
                        span,
                        1 + d.max(id),
                    ));
                }
                _ => current = Some(self.primary(c)),
            }
        }
        let (mut e, mut d) = current.unwrap_or((Expr { kind: ExprKind::Null, span: Span::default() }, 1));
        for (op, start) in prefixes.into_iter().rev() {
            let span = Span::new(start, e.span.end);
            (e, d) = self.deeper(ExprKind::Unary(op, Box::new(e)), span, d + 1);
        }
        (e, d)
    }

    pub(super) fn deeper(&mut self, kind: ExprKind, span: Span, depth: usize) -> (Expr, usize) {
        if depth > MAX_EXPR_DEPTH {
            return self.too_deep(span);
        }
        (Expr { kind, span }, depth)
    }

    pub(super) fn primary(&mut self, p: Pair<Rule>) -> (Expr, usize) {
        let span = self.span_of(&p);
        let leaf = |kind| (Expr { kind, span }, 1);
        match p.as_rule() {
            Rule::k_true => leaf(ExprKind::Bool(true)),
            Rule::k_false => leaf(ExprKind::Bool(false)),
            Rule::k_null => leaf(ExprKind::Null),
            Rule::number => match number_literal(p.as_str()) {
                Some(n) => leaf(ExprKind::Number(n)),
                None => {
                    self.diags.push(
                        Diagnostic::new(Kind::InvalidNumber, self.file, span, "number out of range")
                            .label("this number cannot be represented")
                            .help("integers must fit in 64 bits; floats must be finite"),
                    );
                    leaf(ExprKind::Null)
                }
            },
            Rule::ident => leaf(ExprKind::Var(self.ident(p))),
            Rule::string => {
                let mut depth = 1;
                let s = self.string(p);
                for part in &s.parts {
                    if let StrPart::Expr(_) = part {
                        depth = 2;
                    }
                }
                (Expr { kind: ExprKind::Str(s), span }, depth)
            }
            Rule::paren => {
                let inner = p.into_inner().find(|x| x.as_rule() == Rule::expr).map(|x| self.expr_d(x));
                let (e, d) = inner.unwrap_or((Expr { kind: ExprKind::Null, span }, 1));
                self.deeper(ExprKind::Paren(Box::new(e)), span, d + 1)
            }
            Rule::array if p.clone().into_inner().any(|x| x.as_rule() == Rule::comprehension) => {
                let mut depth = 1;
                let mut parts = Vec::new();
                let mut name = None;
                if let Some(c) = p.into_inner().find(|x| x.as_rule() == Rule::comprehension) {
                    for x in c.into_inner() {
                        match x.as_rule() {
                            Rule::expr => {
                                let (e, d) = self.expr_d(x);
                                depth = depth.max(d + 1);
                                parts.push(e);
                            }
                            Rule::ident => name = Some(self.ident(x)),
                            _ => {}
                        }
                    }
                }
                let mut parts = parts.into_iter();
                match (parts.next(), name, parts.next()) {
                    (Some(elem), Some(name), Some(iter)) => {
                        let cond = parts.next().map(Box::new);
                        let kind = ExprKind::Comprehension {
                            elem: Box::new(elem),
                            name,
                            iter: Box::new(iter),
                            cond,
                        };
                        self.deeper(kind, span, depth)
                    }
                    _ => self.deeper(ExprKind::Array(Vec::new()), span, depth),
                }
            }
            Rule::array => {
                let mut depth = 1;
                let mut items = Vec::new();
                for x in p.into_inner().filter(|x| x.as_rule() == Rule::expr) {
                    let (e, d) = self.expr_d(x);
                    depth = depth.max(d + 1);
                    items.push(e);
                }
                self.deeper(ExprKind::Array(items), span, depth)
            }
            Rule::object => {
                let mut depth = 1;
                let mut entries = Vec::new();
                for entry in p.into_inner().filter(|x| x.as_rule() == Rule::obj_entry) {
                    let mut key = None;
                    let mut value = None;
                    for x in entry.into_inner() {
                        match x.as_rule() {
                            Rule::ident_any => key = Some(ObjKey::Name(self.ident(x))),
                            Rule::string => key = Some(ObjKey::Str(self.string(x))),
                            Rule::expr => {
                                let (e, d) = self.expr_d(x);
                                depth = depth.max(d + 1);
                                value = Some(e);
                            }
                            _ => {}
                        }
                    }
                    if let (Some(k), Some(v)) = (key, value) {
                        entries.push((k, v));
                    }
                }
                self.deeper(ExprKind::Object(entries), span, depth)
            }
            Rule::call if !p.clone().into_inner().any(|x| x.as_rule() == Rule::lparen) => {
                match p.into_inner().find(|x| x.as_rule() == Rule::ident) {
                    Some(i) => leaf(ExprKind::Var(self.ident(i))),
                    None => leaf(ExprKind::Null),
                }
            }
            Rule::call => {
                let mut depth = 1;
                let mut name = Ident { name: String::new(), span };
                let mut args = Vec::new();
                for x in p.into_inner() {
                    match x.as_rule() {
                        Rule::ident => name = self.ident(x),
                        Rule::expr => {
                            let (e, d) = self.expr_d(x);
                            depth = depth.max(d + 1);
                            args.push(e);
                        }
                        _ => {}
                    }
                }
                self.deeper(ExprKind::Call(name, args), span, depth)
            }
            _ => leaf(ExprKind::Null),
        }
    }
}

pub(super) fn number_literal(s: &str) -> Option<serde_json::Number> {
    if s.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = s.parse::<i64>() {
            return Some(i.into());
        }
        if let Ok(u) = s.parse::<u64>() {
            return Some(u.into());
        }
        return None;
    }
    s.parse::<f64>().ok().and_then(serde_json::Number::from_f64)
}
