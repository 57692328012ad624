//! `wf graph --format svg`: wf lays the drawing out itself, no outside tool. A workflow is a
//! structured program, so its drawing is a series-parallel graph plus the back edges of its
//! loops: nodes are ranked top-down by their longest path from the trigger (back edges left
//! out), each rank's nodes are placed side by side in the order of their parents, and a back edge
//! is routed around the right of what it spans.

use super::{Drawing, Shape};
use std::fmt::Write as _;

/// Width of one character of a label (a monospace font at 12 px).
const CHAR_W: f64 = 7.3;
/// Height of one line of a label.
const LINE_H: f64 = 16.0;
const PAD_X: f64 = 12.0;
const PAD_Y: f64 = 8.0;
/// Space between two ranks, and between two nodes of a rank.
const GAP_Y: f64 = 44.0;
const GAP_X: f64 = 28.0;
/// Space around a workflow's drawing (its title above).
const MARGIN: f64 = 20.0;
const TITLE_H: f64 = 28.0;

/// A node's place: its rank, size and, once placed, where.
#[derive(Clone, Default)]
struct Placed {
    rank: usize,
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

impl Placed {
    fn centre(&self) -> f64 {
        self.x + self.w / 2.0
    }
}

/// Every drawing laid out, one below the other, as one SVG document.
pub(super) fn svg(drawings: &[Drawing]) -> String {
    let mut body = String::new();
    let (mut width, mut top) = (0f64, 0f64);
    for d in drawings {
        let (w, h) = workflow(&mut body, d, top);
        width = width.max(w);
        top += h;
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"wf-graph\" viewBox=\"0 0 {w:.0} {h:.0}\" width=\"{w:.0}\" height=\"{h:.0}\" role=\"img\">",
        w = width.max(1.0),
        h = top.max(1.0)
    );
    out.push_str(concat!(
        "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\">",
        "<path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#64748b\"/></marker></defs>\n",
        "<style>text{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;fill:#0f172a}",
        ".edge{stroke:#64748b;stroke-width:1.4;fill:none}.edge-label{font-size:11px;fill:#475569}",
        ".title{font-weight:bold;font-size:13px}",
        ".start rect{fill:#dbeafe;stroke:#3b82f6}.step rect{fill:#ffffff;stroke:#94a3b8}",
        ".decision rect{fill:#f1f5f9;stroke:#64748b}.answer rect{fill:#dcfce7;stroke:#16a34a}",
        ".failure rect{fill:#fee2e2;stroke:#dc2626}.effect rect{fill:#fef3c7;stroke:#d97706}",
        ".wait rect{fill:#f5f3ff;stroke:#7c3aed;stroke-dasharray:5 3}</style>\n"
    ));
    out.push_str(&body);
    out.push_str("</svg>\n");
    out
}

/// Lays out one workflow's drawing at `top`; gives its width and height.
fn workflow(out: &mut String, d: &Drawing, top: f64) -> (f64, f64) {
    let index = |id: &str| d.nodes.iter().position(|node| node.id == id);
    // Edges as node indices; one that goes to an earlier node closes a loop.
    let edges: Vec<(usize, usize, Option<&str>)> =
        d.edges.iter().filter_map(|e| Some((index(&e.from)?, index(&e.to)?, e.label))).collect();
    let mut nodes: Vec<Placed> = d
        .nodes
        .iter()
        .map(|node| {
            let chars = node.label.iter().map(|l| l.chars().count()).max().unwrap_or(0) as f64;
            Placed {
                w: chars * CHAR_W + 2.0 * PAD_X,
                h: node.label.len().max(1) as f64 * LINE_H + 2.0 * PAD_Y,
                ..Placed::default()
            }
        })
        .collect();
    // Nodes are made in execution order, so every forward edge goes to a later node: one pass
    // in order gives each node its longest path from the trigger.
    for &(from, to, _) in edges.iter().filter(|e| e.0 < e.1) {
        let next = nodes.get(from).map_or(0, |f| f.rank + 1);
        if let Some(t) = nodes.get_mut(to) {
            t.rank = t.rank.max(next);
        }
    }
    let ranks = nodes.iter().map(|p| p.rank + 1).max().unwrap_or(0);
    // Each rank's nodes side by side, in the order of where their parents are.
    let mut y = top + MARGIN + TITLE_H;
    for r in 0..ranks {
        let mut members: Vec<(usize, f64)> = nodes
            .iter()
            .enumerate()
            .filter(|(_, p)| p.rank == r)
            .map(|(i, _)| {
                let parents: Vec<f64> = edges
                    .iter()
                    .filter(|e| e.0 < e.1 && e.1 == i)
                    .filter_map(|e| nodes.get(e.0).map(Placed::centre))
                    .collect();
                let wish =
                    if parents.is_empty() { 0.0 } else { parents.iter().sum::<f64>() / parents.len() as f64 };
                (i, wish)
            })
            .collect();
        members.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        let size = |i: usize| nodes.get(i).map_or((0.0, 0.0), |p| (p.w, p.h));
        let total: f64 =
            members.iter().map(|m| size(m.0).0).sum::<f64>() + GAP_X * members.len().saturating_sub(1) as f64;
        let mean = if members.is_empty() {
            0.0
        } else {
            members.iter().map(|m| m.1).sum::<f64>() / members.len() as f64
        };
        let height = members.iter().map(|m| size(m.0).1).fold(0f64, f64::max);
        let mut x = mean - total / 2.0;
        for (i, _) in members {
            if let Some(p) = nodes.get_mut(i) {
                p.x = x;
                p.y = y + (height - p.h) / 2.0;
                x += p.w + GAP_X;
            }
        }
        y += height + GAP_Y;
    }
    // Shift right so the leftmost node is at the margin.
    let left = nodes.iter().map(|p| p.x).fold(f64::INFINITY, f64::min);
    let shift = if left.is_finite() { MARGIN - left } else { MARGIN };
    let mut right = 0f64;
    for p in &mut nodes {
        p.x += shift;
        right = right.max(p.x + p.w);
    }
    let _ = writeln!(
        out,
        "<g class=\"workflow\" id=\"{}\"><text class=\"title\" x=\"{MARGIN}\" y=\"{:.1}\">workflow {}</text>",
        escape(&d.prefix),
        top + MARGIN + 12.0,
        escape(&d.title)
    );
    // Back edges run on the right of everything, each a little further out.
    let mut lane = right + 16.0;
    for &(from, to, label) in &edges {
        let (Some(a), Some(b)) = (nodes.get(from), nodes.get(to)) else { continue };
        if from < to {
            let (x1, y1) = (a.x + a.w / 2.0, a.y + a.h);
            let (x2, y2) = (b.x + b.w / 2.0, b.y);
            let mid = (y1 + y2) / 2.0;
            let _ = writeln!(
                out,
                "<path class=\"edge\" d=\"M {x1:.1} {y1:.1} C {x1:.1} {mid:.1}, {x2:.1} {mid:.1}, {x2:.1} {y2:.1}\" marker-end=\"url(#arrow)\"/>"
            );
            if let Some(l) = label {
                let _ = writeln!(
                    out,
                    "<text class=\"edge-label\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                    (x1 + x2) / 2.0 + 4.0,
                    mid - 3.0,
                    escape(l)
                );
            }
        } else {
            let (x1, y1) = (a.x + a.w, a.y + a.h / 2.0);
            let (x2, y2) = (b.x + b.w, b.y + b.h / 2.0);
            let _ = writeln!(
                out,
                "<path class=\"edge back\" d=\"M {x1:.1} {y1:.1} H {lane:.1} V {y2:.1} H {x2:.1}\" marker-end=\"url(#arrow)\"/>"
            );
            if let Some(l) = label {
                let _ = writeln!(
                    out,
                    "<text class=\"edge-label\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                    lane + 4.0,
                    (y1 + y2) / 2.0,
                    escape(l)
                );
            }
            lane += 12.0;
        }
    }
    for (node, p) in d.nodes.iter().zip(&nodes) {
        let (class, radius) = match node.shape {
            Shape::Start => ("start", 14.0),
            Shape::Step => ("step", 3.0),
            Shape::Decision => ("decision", 0.0),
            Shape::Answer => ("answer", 3.0),
            Shape::Failure => ("failure", 3.0),
            Shape::Effect => ("effect", 8.0),
            Shape::Wait => ("wait", 14.0),
        };
        let _ = write!(
            out,
            "<g class=\"node {class}\" id=\"{}\"><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"{radius}\"/>",
            escape(&node.id),
            p.x,
            p.y,
            p.w,
            p.h
        );
        for (k, line) in node.label.iter().enumerate() {
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                p.x + PAD_X,
                p.y + PAD_Y + LINE_H * (k as f64 + 1.0) - 4.0,
                escape(line)
            );
        }
        out.push_str("</g>\n");
    }
    out.push_str("</g>\n");
    (lane.max(right) + MARGIN, y - top - GAP_Y + MARGIN)
}

/// Text as SVG character data or an attribute value.
fn escape(s: &str) -> String {
    crate::request::value::xml_escape(s)
}

#[cfg(test)]
mod tests {
    use crate::tools::graph::{render, GraphFormat};

    fn drawn(text: &str) -> String {
        let loaded = crate::lang::loader::load_str("t.wf", text);
        assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
        render(&loaded.sources, &loaded.program, None, GraphFormat::Svg).expect("drawn")
    }

    /// The `y` of the node whose first line is `label`.
    fn y_of(svg: &str, label: &str) -> f64 {
        let at = svg.find(&format!(">{}</text>", super::escape(label))).expect(label);
        let rect = svg[..at].rfind("<rect ").expect("rect");
        let y = svg[rect..].split("y=\"").nth(1).expect("y");
        y[..y.find('"').expect("end")].parse().expect("number")
    }

    fn x_of(svg: &str, label: &str) -> f64 {
        let at = svg.find(&format!(">{}</text>", super::escape(label))).expect(label);
        let rect = svg[..at].rfind("<rect ").expect("rect");
        let x = svg[rect..].split("x=\"").nth(1).expect("x");
        x[..x.find('"').expect("end")].parse().expect("number")
    }

    #[test]
    fn branches_are_side_by_side_and_what_follows_is_below_both() {
        let svg = drawn(
            "workflow w {\n  trigger webhook {\n    path \"/w\"\n    mode sync\n  }\n  extract {\n    flag = body \"flag\" as boolean default false\n  }\n  if flag {\n    log \"yes <b>\"\n  } else {\n    log \"no\"\n  }\n  log \"after\"\n}\n",
        );
        assert_eq!(y_of(&svg, "log \"yes <b>\""), y_of(&svg, "log \"no\""));
        assert!(x_of(&svg, "log \"yes <b>\"") != x_of(&svg, "log \"no\""));
        assert!(y_of(&svg, "log \"after\"") > y_of(&svg, "log \"no\""));
        assert!(!svg.contains("<b>"), "labels are escaped");
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    }

    #[test]
    fn a_loop_s_back_edge_goes_up_around_the_right() {
        let svg = drawn(
            "workflow w {\n  trigger webhook {\n    path \"/w\"\n    mode sync\n  }\n  extract {\n    items = body \"items\" as array default []\n  }\n  for i in items {\n    log \"each\"\n  }\n}\n",
        );
        assert!(svg.contains("class=\"edge back\""));
        assert!(y_of(&svg, "log \"each\"") > y_of(&svg, "for i in items"));
    }
}
