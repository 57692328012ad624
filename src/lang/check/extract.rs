//! `extract` lines: source, path, `as`, `required`, `default`.

use super::{closest, Lower};
use crate::lang::ast;
use crate::lang::diagnostic::{Diagnostic, Kind};
use crate::lang::ir::{self, Expr};
use crate::lang::path;
use crate::lang::types::{Type, Types};
use serde_json::Value;

impl Lower<'_> {
    pub(super) fn field(&mut self, f: &ast::Field) -> ir::Extraction {
        let source = f.source;
        let ty = f.ty.as_ref().and_then(|t| {
            let ty = Type::from_name(&t.name);
            if ty.is_none() {
                let help = match closest(&t.name, Type::NAMES.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("the types are {}", Type::NAMES.join(", ")),
                };
                self.err(Kind::UnknownType, t.span, format!("unknown type `{}`", t.name))
                    .set_label("not a type")
                    .set_help(help);
            }
            ty
        });
        let path_span = f.path.as_ref().map_or(f.span, |p| p.span);
        let path_text = match &f.path {
            Some(p) => self.literal(p, "an extraction path").unwrap_or_default(),
            None => String::new(),
        };
        let whole = path_text.is_empty();
        let getter = match source {
            ir::Source::Header if whole => ir::Getter::Header(None),
            ir::Source::Header => match http::HeaderName::from_bytes(path_text.as_bytes()) {
                Ok(h) => ir::Getter::Header(Some(h)),
                Err(_) => {
                    self.err(
                        Kind::InvalidHeaderName,
                        path_span,
                        format!("`{path_text}` is not a valid header name"),
                    )
                    .set_label("not a header name")
                    .set_help("header names are letters, digits and `-`, e.g. \"X-Request-Id\"");
                    ir::Getter::Header(None)
                }
            },
            ir::Source::Request => match ir::RequestField::NAMES.iter().find(|(n, _)| *n == path_text) {
                Some((_, field)) => ir::Getter::Request(*field),
                None => {
                    let names = ir::RequestField::NAMES.iter().map(|(n, _)| *n);
                    let help = match closest(&path_text, names) {
                        Some(n) => format!("did you mean \"{n}\"?"),
                        None => "the fields are method, path, url, ip and raw_body".to_string(),
                    };
                    self.err(
                        Kind::UnknownRequestField,
                        path_span,
                        format!("`request` has no field `{path_text}`"),
                    )
                    .set_label("not a request field")
                    .set_help(help);
                    ir::Getter::Request(ir::RequestField::Method)
                }
            },
            _ if whole && source == ir::Source::Query => ir::Getter::Query(Vec::new()),
            _ if whole => ir::Getter::Body(Vec::new()),
            _ => match path::parse(&path_text) {
                Ok(segs) if source == ir::Source::Query => ir::Getter::Query(segs),
                Ok(segs) => ir::Getter::Body(segs),
                Err(reason) => {
                    self.err(Kind::MalformedPath, path_span, format!("malformed path `{path_text}`"))
                        .set_label(reason)
                        .set_help("paths look like `data.status`, `items[0].id` or `[\"key with.dots\"]`");
                    ir::Getter::Body(Vec::new())
                }
            },
        };
        let mut default_types = Types::NONE;
        let default = f.default.as_ref().map(|d| {
            self.const_only = Some("a `default`");
            let (e, t) = self.typed(d);
            self.const_only = None;
            default_types = t;
            if let (Some(ty), Some(ty_name)) = (ty, &f.ty) {
                if !t.meets(ty.types().or(Types::NULL)) {
                    let d = Diagnostic::new(
                        Kind::DefaultType,
                        self.file,
                        d.span,
                        format!(
                            "the default of `{}` is {}, but it is extracted `as {}`",
                            f.name.name,
                            t.describe(),
                            ty.as_str()
                        ),
                    )
                    .label(format!("{} here", t.describe()))
                    .also(self.file, ty_name.span, format!("declared `as {}` here", ty.as_str()))
                    .help(format!("give a default that is {}, or drop the `as`", ty.types().describe()));
                    self.push(d);
                }
            }
            e
        });
        let default_is_string =
            matches!(&default, None | Some(Expr::Const(Value::String(_)) | Expr::Template(_)));
        let string_only = source != ir::Source::Body
            && !(whole && source != ir::Source::Request)
            && ty.is_none()
            && default_is_string;
        let found = match (ty, source) {
            (Some(ty), _) => ty.types(),
            (None, ir::Source::Body) => Types::ANY,
            (None, ir::Source::Header | ir::Source::Query) if whole => Types::OBJECT,
            (None, _) => Types::STRING,
        };
        let missing = if f.required.is_some() {
            Types::NONE
        } else if let (Some(ty), Some(_)) = (ty, &default) {
            // A default that contradicts `as` is reported above; the value is still of the type.
            default_types.and(ty.types().or(Types::NULL))
        } else if default.is_some() {
            default_types
        } else {
            Types::NULL
        };
        let origin = match (&f.ty, ty, source) {
            (Some(t), Some(ty), _) => (t.span, format!("declared `as {}` here", ty.as_str())),
            (_, _, ir::Source::Body) => (f.name.span, "extracted from the body here".to_string()),
            (_, _, ir::Source::Header | ir::Source::Query) if whole => {
                (path_span, "the whole source is an object".to_string())
            }
            (_, _, s) => (path_span, format!("a {} value is a string", s.as_str())),
        };
        let slot = self.declare(&f.name, string_only, found.or(missing), origin);
        if source == ir::Source::Header {
            if let Some(v) = self.vars.get_mut(slot as usize) {
                v.header = true;
            }
        }
        ir::Extraction {
            slot,
            name: f.name.name.clone(),
            source,
            path_text,
            getter,
            ty,
            required: f.required.is_some(),
            default,
        }
    }
}
