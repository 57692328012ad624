//! `extract { ... }`: each field's source, path, type and default.

use super::*;

impl Builder<'_> {
    pub(super) fn extract(&mut self, p: Pair<Rule>) -> Extract {
        let span = self.span_of(&p);
        let fields = p.into_inner().filter(|c| c.as_rule() == Rule::field).map(|c| self.field(c)).collect();
        Extract { fields, span }
    }

    pub(super) fn field(&mut self, p: Pair<Rule>) -> Field {
        let span = self.span_of(&p);
        let mut name = Ident { name: String::new(), span };
        let mut source = Source::Body;
        let mut path = None;
        let mut ty = None;
        let mut required = None;
        let mut default = None;
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::ident => name = self.ident(c),
                Rule::source => {
                    source = match c.as_str() {
                        "header" => Source::Header,
                        "query" => Source::Query,
                        "request" => Source::Request,
                        _ => Source::Body,
                    }
                }
                Rule::string => path = Some(self.string(c)),
                Rule::as_type => {
                    ty = c.into_inner().find(|x| x.as_rule() == Rule::ident_any).map(|x| self.ident(x))
                }
                Rule::k_required => required = Some(self.span_of(&c)),
                Rule::default_value => {
                    default = c.into_inner().find(|x| x.as_rule() == Rule::expr).map(|x| self.expr(x));
                }
                _ => {}
            }
        }
        Field { name, source, path, ty, required, default, span }
    }
}
