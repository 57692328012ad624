//! `wf graph`: a workflow drawn for code review, as Mermaid, Graphviz DOT or an SVG wf lays out
//! itself (`svg.rs`) — the trigger (path, methods, auth, mode, and the settings that shape how
//! runs flow), the extractions, then the statements in execution order: decisions with
//! their conditions as written, and every way the execution ends (`respond`, `fail`, the end).

use crate::lang::ast::{self, Mode, Span, Stmt};
use crate::lang::diagnostic::SourceFile;
use crate::lang::ir;
use std::fmt::Write as _;

mod svg;

/// Output formats of `wf graph`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum GraphFormat {
    Mermaid,
    Dot,
    /// Laid out by wf (the dashboard's workflow page shows it).
    Svg,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// The trigger.
    Start,
    /// An extraction list, a `let`, a `log`.
    Step,
    /// An `if`.
    Decision,
    /// `respond`, the implicit `200 ok`.
    Answer,
    /// `fail`.
    Failure,
    /// `http`, `run`: a call to another service or a program.
    Effect,
    /// `sleep`: the run waits.
    Wait,
}

struct Node {
    id: String,
    shape: Shape,
    label: Vec<String>,
}

struct Edge {
    from: String,
    to: String,
    label: Option<&'static str>,
}

/// One workflow as nodes and edges.
struct Drawing {
    /// Prefix of its node ids (`w0`, `w1`, …), also the id of its group.
    prefix: String,
    title: String,
    nodes: Vec<Node>,
    edges: Vec<Edge>,
}

/// Where the execution may continue from: a node, and the label of the edge leaving it.
type Exits = Vec<(String, Option<&'static str>)>;

struct Builder<'a> {
    prefix: String,
    file: &'a SourceFile,
    mode: Mode,
    drawing: Drawing,
}

impl Builder<'_> {
    fn node(&mut self, shape: Shape, label: Vec<String>, from: &Exits) -> String {
        let id = format!("{}_{}", self.prefix, self.drawing.nodes.len());
        for (f, l) in from {
            self.drawing.edges.push(Edge { from: f.clone(), to: id.clone(), label: *l });
        }
        self.drawing.nodes.push(Node { id: id.clone(), shape, label });
        id
    }

    fn text(&self, span: Span) -> String {
        let t = self.file.text.get(span.start..span.end).unwrap_or("");
        let one_line: String = t.split_whitespace().collect::<Vec<_>>().join(" ");
        if one_line.chars().count() > 60 {
            let cut: String = one_line.chars().take(57).collect();
            format!("{cut}...")
        } else {
            one_line
        }
    }

    fn block(&mut self, stmts: &[Stmt], mut exits: Exits) -> Exits {
        for s in stmts {
            if exits.is_empty() {
                break;
            }
            exits = self.stmt(s, exits);
        }
        exits
    }

    fn stmt(&mut self, s: &Stmt, exits: Exits) -> Exits {
        match s {
            Stmt::For { iter, parallel, body, span, .. } => {
                // The loop: its header, the body, and back to the header for the next element.
                let end = parallel.as_ref().map_or(iter.span.end, |n| n.span.end);
                let head = self.text(crate::lang::ast::Span::new(span.start, end));
                let header = self.node(Shape::Decision, vec![head], &exits);
                let back = self.block(&body.stmts, vec![(header.clone(), Some("each"))]);
                for (from, label) in back {
                    self.drawing.edges.push(Edge { from, to: header.clone(), label: label.or(Some("next")) });
                }
                vec![(header, Some("done"))]
            }
            Stmt::Let { .. } | Stmt::Log(..) => {
                let label = vec![self.text(s.span())];
                vec![(self.node(Shape::Step, label, &exits), None)]
            }
            Stmt::Sleep(..) => {
                let label = vec![self.text(s.span())];
                vec![(self.node(Shape::Wait, label, &exits), None)]
            }
            Stmt::Respond(r) => {
                let label = vec![self.text(r.span)];
                self.node(Shape::Answer, label, &exits);
                Vec::new()
            }
            Stmt::Effect { name, effect, span } => {
                // The call's head: up to its block, or its URL / arguments when it has none.
                let head_end = match effect {
                    crate::lang::ast::Effect::Http(h) => h.url.span.end,
                    crate::lang::ast::Effect::Run(r) => {
                        r.args.as_ref().map_or(r.program.span.end, |a| a.span.end)
                    }
                    crate::lang::ast::Effect::Callback { span, .. }
                    | crate::lang::ast::Effect::Wait { span, .. } => span.end,
                };
                // A wait is drawn as one.
                let shape = if matches!(effect, crate::lang::ast::Effect::Wait { .. }) {
                    Shape::Wait
                } else {
                    Shape::Effect
                };
                let head = self.text(Span::new(effect.span().start, head_end));
                let label = match name {
                    Some(n) => vec![format!("{} = {head}", n.name)],
                    None => vec![head],
                };
                let _ = span;
                vec![(self.node(shape, label, &exits), None)]
            }
            Stmt::Fail(..) => {
                let label = vec![self.text(s.span())];
                self.node(Shape::Failure, label, &exits);
                Vec::new()
            }
            Stmt::If(i) => {
                let mut pending = exits;
                let mut out = Exits::new();
                for (cond, body) in &i.branches {
                    let label = vec![format!("if {}", self.text(cond.span))];
                    let decision = self.node(Shape::Decision, label, &pending);
                    out.extend(self.block(&body.stmts, vec![(decision.clone(), Some("yes"))]));
                    pending = vec![(decision, Some("no"))];
                }
                match &i.otherwise {
                    Some(b) => out.extend(self.block(&b.stmts, pending)),
                    None => out.extend(pending),
                }
                out
            }
        }
    }
}

fn draw(w: &ast::Workflow, lowered: &ir::Workflow, file: &SourceFile, index: usize) -> Drawing {
    let mut b = Builder {
        prefix: format!("w{index}"),
        file,
        mode: lowered.mode,
        drawing: Drawing {
            prefix: format!("w{index}"),
            title: lowered.name.clone(),
            nodes: Vec::new(),
            edges: Vec::new(),
        },
    };
    let methods: Vec<&str> = lowered.methods.iter().map(http::Method::as_str).collect();
    let mut trigger = vec![format!("{} {}", methods.join(" "), lowered.path)];
    let auth = lowered.auth.as_ref().map_or("no auth", |a| a.kind.name());
    let mode = if lowered.mode == Mode::Async { "async" } else { "sync" };
    trigger.push(format!("auth {auth} · {mode}"));
    if !lowered.allow.is_empty() {
        trigger.push(format!(
            "allow ip {}",
            lowered.allow.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(" ")
        ));
    }
    // How runs flow: at most N at once, once per delivery, the newest of a burst, one key at a
    // time, at most N per window; as written.
    for item in &w.items {
        let ast::WfItem::Trigger(t) = item else { continue };
        for s in &t.settings {
            if matches!(
                s,
                ast::Setting::Concurrency(..)
                    | ast::Setting::Dedupe { .. }
                    | ast::Setting::Debounce { .. }
                    | ast::Setting::Order(..)
                    | ast::Setting::Rate { .. }
            ) {
                trigger.push(b.text(s.span()));
            }
        }
    }
    let start = b.node(Shape::Start, trigger, &Vec::new());
    let mut exits: Exits = vec![(start, None)];
    if lowered.mode == Mode::Async {
        let immediate = match &lowered.immediate {
            Some(r) => format!("answers {} at once", r.status),
            None => "answers 200 ok at once".to_string(),
        };
        exits = vec![(b.node(Shape::Answer, vec![immediate], &exits), Some("then"))];
    }
    let fields: Vec<String> = w
        .items
        .iter()
        .filter_map(|i| if let ast::WfItem::Extract(x) = i { Some(x) } else { None })
        .flat_map(|x| x.fields.iter())
        .map(|f| b.text(f.span))
        .collect();
    if !fields.is_empty() {
        let mut label = vec!["extract".to_string()];
        label.extend(fields);
        exits = vec![(b.node(Shape::Step, label, &exits), None)];
    }
    let stmts: Vec<Stmt> = w
        .items
        .iter()
        .filter_map(|i| if let ast::WfItem::Stmt(s) = i { Some((**s).clone()) } else { None })
        .collect();
    let exits = b.block(&stmts, exits);
    if !exits.is_empty() {
        let end = if b.mode == Mode::Async { "end" } else { "end: 200 ok" };
        b.node(Shape::Answer, vec![end.to_string()], &exits);
    }
    b.drawing
}

/// Every workflow of `file` (or the one named `only`) drawn in `format`; `Err` names what is missing.
pub(crate) fn render(
    sources: &[(std::sync::Arc<SourceFile>, ast::File)],
    program: &ir::Program,
    only: Option<&str>,
    format: GraphFormat,
) -> Result<String, String> {
    let mut drawings = Vec::new();
    for (file, parsed) in sources {
        for item in &parsed.items {
            let ast::Item::Workflow(w) = item else { continue };
            if only.is_some_and(|name| name != w.name.name) {
                continue;
            }
            let Some(lowered) = program.workflows.iter().find(|l| l.name == w.name.name) else { continue };
            drawings.push(draw(w, lowered, file, drawings.len()));
        }
    }
    if drawings.is_empty() {
        let files: Vec<&str> = sources.iter().map(|(f, _)| f.name.as_str()).collect();
        let files = if files.is_empty() { "no .wf file".to_string() } else { files.join(", ") };
        return Err(match only {
            Some(name) => format!("no workflow `{name}` in {files}"),
            None => format!("no workflow in {files}"),
        });
    }
    Ok(match format {
        GraphFormat::Mermaid => mermaid(&drawings),
        GraphFormat::Dot => dot(&drawings),
        GraphFormat::Svg => svg::svg(&drawings),
    })
}

fn mermaid(drawings: &[Drawing]) -> String {
    let esc = |s: &str| s.replace('"', "#quot;").replace('<', "#lt;").replace('>', "#gt;");
    let mut out = String::from("flowchart TD\n");
    for d in drawings {
        let _ = writeln!(out, "  subgraph {}[\"workflow {}\"]", d.prefix, esc(&d.title));
        for n in &d.nodes {
            let label = n.label.iter().map(|l| esc(l)).collect::<Vec<_>>().join("<br/>");
            let (open, close) = match n.shape {
                Shape::Start => ("([\"", "\"])"),
                Shape::Step => ("[\"", "\"]"),
                Shape::Decision => ("{\"", "\"}"),
                Shape::Answer => ("[/\"", "\"/]"),
                Shape::Failure => ("[[\"", "\"]]"),
                Shape::Effect => ("{{\"", "\"}}"),
                Shape::Wait => ("((\"", "\"))"),
            };
            let _ = writeln!(out, "    {}{open}{label}{close}", n.id);
        }
        for e in &d.edges {
            match e.label {
                Some(l) => {
                    let _ = writeln!(out, "    {} -- {l} --> {}", e.from, e.to);
                }
                None => {
                    let _ = writeln!(out, "    {} --> {}", e.from, e.to);
                }
            }
        }
        out.push_str("  end\n");
    }
    out
}

fn dot(drawings: &[Drawing]) -> String {
    let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let mut out = String::from("digraph wf {\n  rankdir=TB;\n  node [fontname=\"Helvetica\", fontsize=11];\n  edge [fontname=\"Helvetica\", fontsize=10];\n");
    for (i, d) in drawings.iter().enumerate() {
        let _ = writeln!(out, "  subgraph cluster_{i} {{\n    label=\"workflow {}\";", esc(&d.title));
        for n in &d.nodes {
            // Boxes of several lines are left-aligned; the trigger and decisions are centred.
            let label = match n.shape {
                Shape::Start | Shape::Decision => {
                    n.label.iter().map(|l| esc(l)).collect::<Vec<_>>().join("\\n")
                }
                _ => n.label.iter().map(|l| esc(l)).collect::<Vec<_>>().join("\\l") + "\\l",
            };
            let style = match n.shape {
                Shape::Start => "shape=box, style=\"rounded,filled\", fillcolor=\"#dbeafe\"",
                Shape::Step => "shape=box",
                Shape::Decision => "shape=diamond",
                Shape::Answer => "shape=box, style=filled, fillcolor=\"#dcfce7\"",
                Shape::Failure => "shape=box, style=filled, fillcolor=\"#fee2e2\"",
                Shape::Effect => "shape=component, style=filled, fillcolor=\"#fef3c7\"",
                Shape::Wait => "shape=box, style=\"rounded,dashed\"",
            };
            let _ = writeln!(out, "    {} [label=\"{label}\", {style}];", n.id);
        }
        for e in &d.edges {
            match e.label {
                Some(l) => {
                    let _ = writeln!(out, "    {} -> {} [label=\"{l}\"];", e.from, e.to);
                }
                None => {
                    let _ = writeln!(out, "    {} -> {};", e.from, e.to);
                }
            }
        }
        out.push_str("  }\n");
    }
    out.push_str("}\n");
    out
}
