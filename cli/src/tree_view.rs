//! Pictures of a search tree for people: [`svg`] draws it top-down, [`html`] shows it as a page of
//! nested, collapsible nodes. Both are self-contained (no fonts, scripts or styles fetched from
//! anywhere) and escape every label, since action text comes from the environment.
//!
//! Trees from MCTS have thousands of nodes, so both keep only the `max_nodes` most visited ones
//! (a node is only kept with its parent, so what is shown is still a tree rooted at the root) and
//! say how many were left out.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt::{self, Write};

use wasmgym_search::{Tree, TreeNode};

/// The tree as an SVG picture, top-down: one box per node with its action, visits (`n=`) and mean
/// value (`v=`, coloured green when good and red when bad for the player who chose the action),
/// edges as wide as their visits, the most visited path in orange and terminal nodes with a double
/// border. Only the `max_nodes` most visited nodes are drawn (at least the root); a caption says
/// how many were left out. Hovering a box shows everything about its node.
pub fn svg(tree: &Tree, max_nodes: usize) -> String {
    let view = View::new(tree, max_nodes);
    let mut out = String::new();
    // Writing to a `String` cannot fail.
    let _ = write_svg(&mut out, &view);
    out
}

/// The tree as one HTML page: nested, collapsible nodes (the root open, its children visible),
/// each with its action, the player to move, visits, mean value and whether the episode is over
/// there; children sorted by visits, the most visited path in orange, and buttons to expand or
/// collapse everything. Only the `max_nodes` most visited nodes are included (at least the root);
/// the header says how many were left out.
pub fn html(tree: &Tree, max_nodes: usize) -> String {
    let view = View::new(tree, max_nodes);
    let mut out = String::new();
    // Writing to a `String` cannot fail.
    let _ = write_html(&mut out, &view);
    out
}

/// The part of a tree that is shown: the most visited nodes, each with its parent.
struct View<'a> {
    /// The shown nodes, the root first, each before its children.
    nodes: Vec<Shown<'a>>,
    /// Nodes in the whole tree.
    total: usize,
    /// The largest visit count of a shown node other than the root (at least 1).
    max_visits: u64,
    /// The largest absolute mean value of a shown, visited node (0 when there is none).
    max_value: f64,
}

/// One shown node.
struct Shown<'a> {
    node: &'a TreeNode,
    /// The node's index in [`Tree::nodes`].
    index: usize,
    /// Its parent's index in [`View::nodes`].
    parent: Option<usize>,
    /// Its shown children's indices in [`View::nodes`], in the order the tree lists them.
    children: Vec<usize>,
    /// Children of the node in the tree that are not shown.
    hidden: usize,
    /// Steps from the root.
    depth: usize,
    /// The node is on the most visited path: from the root, the most visited child each time.
    best: bool,
}

impl<'a> View<'a> {
    /// Keeps the `max_nodes` most visited nodes (at least the root), each with its parent: best
    /// first from the root, so a node is only considered once its parent is kept. Visits never
    /// grow from a parent to a child in a search tree, so this is the `max_nodes` most visited.
    ///
    /// A malformed tree does not panic: children out of range, or already reached by another
    /// way (a cycle or a shared child), are skipped.
    fn new(tree: &'a Tree, max_nodes: usize) -> View<'a> {
        let mut view = View { nodes: Vec::new(), total: tree.nodes.len(), max_visits: 1, max_value: 0.0 };
        let Some(root) = tree.nodes.first() else {
            return view;
        };
        // Where each tree node is in the view, and which tree node first reached it.
        let mut shown_as: Vec<Option<usize>> = vec![None; tree.nodes.len()];
        let mut reached_from: Vec<Option<usize>> = vec![None; tree.nodes.len()];
        let mut reached = vec![false; tree.nodes.len()];
        reached[0] = true;
        let mut frontier = BinaryHeap::from([(root.visits, Reverse(0))]);
        while view.nodes.len() < max_nodes.max(1) {
            let Some((_, Reverse(index))) = frontier.pop() else {
                break;
            };
            let node = &tree.nodes[index];
            let parent = reached_from[index].and_then(|p| shown_as[p]);
            let depth = parent.map_or(0, |p| view.nodes[p].depth + 1);
            shown_as[index] = Some(view.nodes.len());
            view.nodes.push(Shown { node, index, parent, children: Vec::new(), hidden: 0, depth, best: false });
            for &child in &node.children {
                if let Some(false) = reached.get(child) {
                    reached[child] = true;
                    reached_from[child] = Some(index);
                    frontier.push((tree.nodes[child].visits, Reverse(child)));
                }
            }
        }
        // Each node's children in the tree's order, and how many of them are left out.
        for shown in &mut view.nodes {
            let own = |&child: &usize| reached_from.get(child) == Some(&Some(shown.index));
            let (kept, left_out): (Vec<usize>, Vec<usize>) =
                shown.node.children.iter().copied().filter(own).partition(|&c| shown_as[c].is_some());
            shown.children = kept.into_iter().filter_map(|c| shown_as[c]).collect();
            shown.hidden = left_out.len();
        }
        // The most visited path (ties: the first listed).
        let mut at = 0;
        loop {
            view.nodes[at].best = true;
            let children = &view.nodes[at].children;
            let most = children.iter().copied().rev().max_by_key(|&c| view.nodes[c].node.visits);
            match most {
                Some(child) => at = child,
                None => break,
            }
        }
        for shown in view.nodes.iter().skip(1) {
            view.max_visits = view.max_visits.max(shown.node.visits);
        }
        for shown in &view.nodes {
            let value = shown.node.value;
            if shown.node.visits > 0 && value.is_finite() {
                view.max_value = view.max_value.max(value.abs());
            }
        }
        view
    }

    /// Nodes of the tree that are not shown.
    fn left_out(&self) -> usize {
        self.total - self.nodes.len()
    }

    /// The most visited path, root first.
    fn best_path(&self) -> Vec<&Shown<'a>> {
        self.nodes.iter().filter(|s| s.best).collect()
    }

    /// The shown node's share of its parent's visits, in percent.
    fn share(&self, shown: &Shown) -> Option<f64> {
        let parent = self.nodes[shown.parent?].node.visits;
        (parent > 0).then(|| 100.0 * shown.node.visits as f64 / parent as f64)
    }

    /// A sentence on how much of the tree is shown.
    fn summary(&self) -> String {
        match (self.total, self.left_out()) {
            (0, _) => "The tree is empty.".to_string(),
            (1, _) => "1 node.".to_string(),
            (total, 0) => format!("{total} nodes, all shown."),
            (total, left_out) => {
                format!("{total} nodes: the {} most visited shown, {left_out} left out.", self.nodes.len())
            }
        }
    }
}

/// The action that led to a node, as shown: `root` for the root.
fn action(shown: &Shown) -> String {
    match (&shown.node.action, shown.parent) {
        (Some(action), _) => action.clone(),
        (None, None) => "root".to_string(),
        (None, Some(_)) => "?".to_string(),
    }
}

/// A mean value as `+0.57`.
fn value(v: f64) -> String {
    // No `-0.00` for values that round to zero.
    if v.abs() < 0.005 { "+0.00".to_string() } else { format!("{v:+.2}") }
}

/// Who moves at a node, in words.
fn player(node: &TreeNode) -> String {
    match (node.player, node.terminal) {
        (Some(p), _) => format!("player {p} to move"),
        (None, true) => "no one to move".to_string(),
        (None, false) => "no player to move".to_string(),
    }
}

/// At most `max` characters of `text`, with `…` in place of the rest.
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut short: String = text.chars().take(max.saturating_sub(1)).collect();
    short.push('…');
    short
}

/// `text` safe inside XML or HTML, as element content or a quoted attribute: markup characters
/// become references, and characters XML forbids or that could hide or reorder text (controls,
/// bidirectional overrides, non-characters) are shown as `\u{..}`.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control()
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c)
                || c == '\u{fffe}'
                || c == '\u{ffff}' =>
            {
                out.extend(c.escape_unicode());
            }
            c => out.push(c),
        }
    }
    out
}

// The drawing's measures, in pixels (SVG user units).
const FONT: f64 = 11.0;
/// The width of a character of the monospace font, roughly.
const CHAR: f64 = 0.62 * FONT;
/// The longest action label drawn in a box; longer ones are cut (the tooltip has all of it).
const LABEL_CHARS: usize = 18;
const BOX_H: f64 = 30.0;
const GAP_X: f64 = 14.0;
const LEVEL_H: f64 = BOX_H + 42.0;
/// The straight part of an edge, below the parent.
const TRUNK_H: f64 = 18.0;
const MARGIN: f64 = 16.0;
const LINE_H: f64 = 16.0;
const BEST: &str = "#e8590c";
const EDGE: &str = "#adb5bd";
const INK: &str = "#343a40";

fn write_svg(out: &mut String, view: &View) -> fmt::Result {
    // Box width: enough for the longest label or numbers line.
    let longest = view.nodes.iter().map(|s| box_lines(s).iter().map(|l| l.chars().count()).max().unwrap_or(0)).max();
    let box_w = (longest.unwrap_or(0) as f64 * CHAR + 12.0).max(56.0);
    let slot = box_w + GAP_X;
    let x = layout(view, slot);
    let caption = svg_caption(view);
    let caption_h = caption.len() as f64 * LINE_H + 12.0;
    let depth = view.nodes.iter().map(|s| s.depth).max().unwrap_or(0);
    let caption_w = caption.iter().map(|l| l.chars().count()).max().unwrap_or(0) as f64 * CHAR;
    let leaves = view.nodes.iter().filter(|s| s.children.is_empty()).count();
    let width = (leaves as f64 * slot).max(caption_w) + 2.0 * MARGIN;
    let height = caption_h + (depth + 1) as f64 * LEVEL_H + MARGIN;
    let top = |s: &Shown| MARGIN + caption_h + s.depth as f64 * LEVEL_H;

    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="monospace" font-size="{FONT}">"#
    )?;
    writeln!(out, "<title>Search tree</title>")?;
    writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#)?;
    for (i, line) in caption.iter().enumerate() {
        let weight = if i == 0 { r#" font-weight="bold""# } else { "" };
        let y = MARGIN + (i as f64 + 0.75) * LINE_H;
        writeln!(out, r#"<text x="{MARGIN}" y="{y:.1}" fill="{INK}"{weight}>{}</text>"#, escape(line))?;
    }
    // Edges, the most visited path's last so that they are drawn on top.
    for on_path in [false, true] {
        for (i, child) in view.nodes.iter().enumerate() {
            let Some(p) = child.parent else { continue };
            if child.best != on_path {
                continue;
            }
            let (x1, y1, x2, y2) = (x[p], top(&view.nodes[p]) + BOX_H, x[i], top(child));
            // Straight down out of the parent (clear of its `+k more`), then a curve to the child.
            let trunk = y1 + TRUNK_H;
            let mid = (trunk + y2) / 2.0;
            let share = child.node.visits as f64 / view.max_visits as f64;
            let stroke_w = 1.0 + 5.0 * share.sqrt();
            let colour = if on_path { BEST } else { EDGE };
            writeln!(
                out,
                r#"<path d="M{x1:.1},{y1:.1} V{trunk:.1} C{x1:.1},{mid:.1} {x2:.1},{mid:.1} {x2:.1},{y2:.1}" fill="none" stroke="{colour}" stroke-width="{stroke_w:.1}"/>"#
            )?;
        }
    }
    for (i, shown) in view.nodes.iter().enumerate() {
        let (left, y) = (x[i] - box_w / 2.0, top(shown));
        let (stroke, stroke_w) = if shown.best { (BEST, 2.5) } else { (INK, 1.0) };
        writeln!(out, "<g>")?;
        writeln!(out, "<title>{}</title>", tooltip(view, shown))?;
        if shown.node.terminal {
            writeln!(
                out,
                r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="6" fill="none" stroke="{stroke}" stroke-width="1"/>"#,
                left - 3.5,
                y - 3.5,
                box_w + 7.0,
                BOX_H + 7.0
            )?;
        }
        writeln!(
            out,
            r#"<rect x="{left:.1}" y="{y:.1}" width="{box_w:.1}" height="{BOX_H}" rx="4" fill="{}" stroke="{stroke}" stroke-width="{stroke_w}"/>"#,
            fill(view, shown)
        )?;
        let [label, numbers] = box_lines(shown);
        let cx = x[i];
        writeln!(
            out,
            r#"<text x="{cx:.1}" y="{:.1}" text-anchor="middle" font-weight="bold" fill="{INK}">{}</text>"#,
            y + 12.0,
            escape(&label)
        )?;
        writeln!(out, r#"<text x="{cx:.1}" y="{:.1}" text-anchor="middle" fill="{INK}">{numbers}</text>"#, y + 25.0)?;
        if shown.hidden > 0 {
            writeln!(
                out,
                r##"<text x="{:.1}" y="{:.1}" font-size="9" fill="#868e96">+{} more</text>"##,
                left + 2.0,
                y + BOX_H + 14.0,
                shown.hidden
            )?;
        }
        writeln!(out, "</g>")?;
    }
    writeln!(out, "</svg>")
}

/// The two lines in a node's box: the action (cut to [`LABEL_CHARS`]) and `n=312 v=+0.57`.
fn box_lines(shown: &Shown) -> [String; 2] {
    let numbers = format!("n={} v={}", shown.node.visits, value(shown.node.value));
    [truncate(&action(shown), LABEL_CHARS), numbers]
}

/// The centre of each shown node's box: leaves one slot apart from left to right (children in
/// the tree's order), parents centred over their children.
fn layout(view: &View, slot: f64) -> Vec<f64> {
    let mut x = vec![0.0; view.nodes.len()];
    if view.nodes.is_empty() {
        return x;
    }
    // Depth first, left to right, without recursion (trees can be deep).
    let mut order = Vec::with_capacity(view.nodes.len());
    let mut stack = vec![0];
    while let Some(i) = stack.pop() {
        order.push(i);
        stack.extend(view.nodes[i].children.iter().rev());
    }
    let mut leaves = 0;
    for &i in &order {
        if view.nodes[i].children.is_empty() {
            x[i] = MARGIN + (leaves as f64 + 0.5) * slot;
            leaves += 1;
        }
    }
    // Children before parents.
    for &i in order.iter().rev() {
        let children = &view.nodes[i].children;
        if let (Some(&first), Some(&last)) = (children.first(), children.last()) {
            x[i] = (x[first] + x[last]) / 2.0;
        }
    }
    x
}

/// The caption's lines: what is shown, the most visited path, and how to read the picture.
fn svg_caption(view: &View) -> Vec<String> {
    let mut lines = vec![format!("Search tree: {}", view.summary())];
    let path: Vec<String> = view.best_path().iter().skip(1).map(|s| truncate(&action(s), LABEL_CHARS)).collect();
    if !path.is_empty() {
        let mut text = path.iter().take(12).cloned().collect::<Vec<_>>().join(" → ");
        if path.len() > 12 {
            text.push_str(" → …");
        }
        lines.push(format!("Most visited path (orange): {text}"));
    }
    lines.push("Box: action, n = visits, v = mean value for the player who chose the action".to_string());
    lines.push(format!(
        "(green good, red bad, full colour at ±{}). Edge width: visits.",
        value(view.max_value).trim_start_matches('+')
    ));
    lines.push("Double border: the episode is over. +k more: children left out. Hover a box for details.".to_string());
    lines
}

/// A node's box colour: white when its value is 0 (or unknown), greener the better and redder the
/// worse for the player who chose the action, relative to the largest value shown; grey when never
/// visited.
fn fill(view: &View, shown: &Shown) -> String {
    let v = shown.node.value;
    if shown.node.visits == 0 {
        return "#f1f3f5".to_string();
    }
    if !v.is_finite() || view.max_value <= 0.0 {
        return "#ffffff".to_string();
    }
    let t = (v / view.max_value).clamp(-1.0, 1.0);
    let target: [f64; 3] = if t >= 0.0 { [140.0, 233.0, 154.0] } else { [255.0, 168.0, 168.0] };
    let [r, g, b] = target.map(|c| (255.0 + t.abs() * (c - 255.0)).round() as u8);
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// Everything about a node, for its tooltip, escaped.
fn tooltip(view: &View, shown: &Shown) -> String {
    let node = shown.node;
    let mut lines = vec![
        format!("action: {}", action(shown)),
        player(node),
        match view.share(shown) {
            Some(share) => format!("visits: {} ({share:.0}% of the parent's)", node.visits),
            None => format!("visits: {}", node.visits),
        },
        format!("mean value: {:+.4}", node.value),
    ];
    if node.terminal {
        lines.push("terminal: the episode is over".to_string());
    }
    if shown.hidden > 0 {
        lines.push(format!("{} children left out", shown.hidden));
    }
    lines.iter().map(|l| escape(l)).collect::<Vec<_>>().join("\n")
}

const STYLE: &str = "
body { font: 14px/1.5 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; margin: 1.5em; color: #212529; }
h1 { font-size: 1.25em; margin: 0 0 .3em; }
header p { margin: .2em 0; }
button { font: inherit; margin: .4em .4em .8em 0; }
details > .kids { margin-left: .55em; padding-left: 1em; border-left: 1px dotted #ced4da; }
summary { cursor: pointer; padding: 0 .3em; border-radius: 3px; }
summary:hover { background: #f1f3f5; }
.leaf { padding: 0 .3em 0 1.45em; }
.a { font-weight: bold; }
.best > summary .a, .leaf.best .a { color: #e8590c; }
.s, .p, .more { color: #868e96; }
.pos { color: #2b8a3e; }
.neg { color: #c92a2a; }
.t { background: #343a40; color: #fff; border-radius: 3px; padding: 0 .35em; font-size: 85%; }
.more { font-style: italic; padding-left: 1.45em; }
";

const SCRIPT: &str = "
const all = () => document.querySelectorAll('details');
document.getElementById('expand').onclick = () => all().forEach(d => d.open = true);
document.getElementById('collapse').onclick = () => all().forEach((d, i) => d.open = i === 0);
document.getElementById('best').onclick = () => all().forEach(d => d.open = d.classList.contains('best'));
";

fn write_html(out: &mut String, view: &View) -> fmt::Result {
    writeln!(out, "<!DOCTYPE html>")?;
    writeln!(out, r#"<html lang="en">"#)?;
    writeln!(out, "<head>")?;
    writeln!(out, r#"<meta charset="utf-8">"#)?;
    writeln!(out, r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#)?;
    writeln!(out, "<title>Search tree</title>")?;
    writeln!(out, "<style>{STYLE}</style>")?;
    writeln!(out, "</head>")?;
    writeln!(out, "<body>")?;
    writeln!(out, "<header>")?;
    writeln!(out, "<h1>Search tree</h1>")?;
    writeln!(out, "<p>{}</p>", escape(&view.summary()))?;
    writeln!(
        out,
        "<p>Each node: the action that led to it, who moves there, visits (and share of the parent's), \
         and the mean value for the player who chose the action. Children are sorted by visits; \
         the most visited path is in orange.</p>"
    )?;
    writeln!(
        out,
        r#"<button id="expand">Expand all</button><button id="collapse">Collapse all</button><button id="best">Open the most visited path</button>"#
    )?;
    writeln!(out, "</header>")?;
    writeln!(out, "<main>")?;
    if !view.nodes.is_empty() {
        write_html_nodes(out, view)?;
    }
    writeln!(out, "</main>")?;
    writeln!(out, "<script>{SCRIPT}</script>")?;
    writeln!(out, "</body>")?;
    writeln!(out, "</html>")
}

/// The nested nodes, depth first without recursion (trees can be deep), children by visits.
fn write_html_nodes(out: &mut String, view: &View) -> fmt::Result {
    enum Step {
        Open(usize),
        Close(usize),
    }
    let mut stack = vec![Step::Open(0)];
    while let Some(step) = stack.pop() {
        match step {
            Step::Open(i) => {
                let shown = &view.nodes[i];
                let best = if shown.best { " best" } else { "" };
                if shown.children.is_empty() && shown.hidden == 0 {
                    writeln!(out, r#"<div class="leaf{best}">{}</div>"#, html_line(view, shown))?;
                    continue;
                }
                let open = if i == 0 { " open" } else { "" };
                writeln!(
                    out,
                    r#"<details class="node{best}"{open}><summary>{}</summary><div class="kids">"#,
                    html_line(view, shown)
                )?;
                stack.push(Step::Close(i));
                let mut children = shown.children.clone();
                // Most visited first (ties: the tree's order); the stack pops the last pushed first.
                children.sort_by_key(|&c| Reverse(view.nodes[c].node.visits));
                stack.extend(children.into_iter().rev().map(Step::Open));
            }
            Step::Close(i) => {
                let hidden = view.nodes[i].hidden;
                if hidden > 0 {
                    let children = if hidden == 1 { "child" } else { "children" };
                    writeln!(out, r#"<div class="more">{hidden} less visited {children} left out</div>"#)?;
                }
                writeln!(out, "</div></details>")?;
            }
        }
    }
    Ok(())
}

/// One node's line: action, visits, share, value, player, terminal.
fn html_line(view: &View, shown: &Shown) -> String {
    let node = shown.node;
    let mut line = format!(r#"<span class="a">{}</span> n={}"#, escape(&truncate(&action(shown), 200)), node.visits);
    if let Some(share) = view.share(shown) {
        line.push_str(&format!(r#" <span class="s">({share:.0}%)</span>"#));
    }
    let sign = if node.value > 0.0 {
        " pos"
    } else if node.value < 0.0 {
        " neg"
    } else {
        ""
    };
    line.push_str(&format!(r#" <span class="v{sign}">v={}</span>"#, value(node.value)));
    line.push_str(&format!(r#" <span class="p">{}</span>"#, escape(&player(node))));
    if node.terminal {
        line.push_str(r#" <span class="t">terminal</span>"#);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(parent: Option<usize>, action: &str, visits: u64, value: f64) -> TreeNode {
        TreeNode {
            parent,
            action: parent.map(|_| action.to_string()),
            player: Some(0),
            visits,
            value,
            terminal: false,
            children: Vec::new(),
        }
    }

    /// A tree from (parent, action, visits, value), children linked in the order given.
    fn tree(nodes: &[(Option<usize>, &str, u64, f64)]) -> Tree {
        let mut tree = Tree { nodes: nodes.iter().map(|&(p, a, n, v)| node(p, a, n, v)).collect() };
        for i in 0..tree.nodes.len() {
            if let Some(p) = tree.nodes[i].parent {
                tree.nodes[p].children.push(i);
            }
        }
        tree
    }

    /// root (100) -> a (70) -> c (50), d (19); root -> b (29) -> e (28, terminal).
    fn small() -> Tree {
        let mut t = tree(&[
            (None, "", 100, 0.1),
            (Some(0), "a", 70, 0.57),
            (Some(0), "b", 29, -0.25),
            (Some(1), "c", 50, 0.8),
            (Some(1), "d", 19, -1.0),
            (Some(2), "e", 28, 1.0),
        ]);
        t.nodes[5].terminal = true;
        t.nodes[5].player = None;
        t
    }

    /// A well-formedness check of XML: one root element, tags nested and closed, quoted attributes
    /// without `<`, only known entities, no bare `&` or `<`, no characters XML forbids. Returns
    /// the element names in document order.
    fn check_xml(text: &str) -> Result<Vec<String>, String> {
        fn check_text(text: &str) -> Result<(), String> {
            if let Some(c) = text.chars().find(|&c| c.is_control() && !matches!(c, '\n' | '\t' | '\r')) {
                return Err(format!("forbidden character {c:?}"));
            }
            let mut rest = text;
            while let Some(at) = rest.find('&') {
                rest = &rest[at + 1..];
                let end = rest.find(';').ok_or("`&` without `;`")?;
                let name = &rest[..end];
                let known = matches!(name, "amp" | "lt" | "gt" | "quot" | "apos")
                    || name.strip_prefix("#x").is_some_and(|h| !h.is_empty() && u32::from_str_radix(h, 16).is_ok())
                    || name.strip_prefix('#').is_some_and(|d| !d.is_empty() && d.parse::<u32>().is_ok());
                if !known {
                    return Err(format!("unknown entity `&{name};`"));
                }
                rest = &rest[end + 1..];
            }
            Ok(())
        }
        let mut rest = text.strip_prefix(r#"<?xml version="1.0" encoding="UTF-8"?>"#).unwrap_or(text);
        let mut open: Vec<String> = Vec::new();
        let mut names = Vec::new();
        let mut roots = 0;
        while let Some(at) = rest.find('<') {
            let content = &rest[..at];
            check_text(content)?;
            if open.is_empty() && !content.trim().is_empty() {
                return Err("text outside the root element".into());
            }
            rest = &rest[at + 1..];
            let end = rest.find('>').ok_or("`<` without `>`")?;
            let tag = &rest[..end];
            rest = &rest[end + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                if open.pop().as_deref() != Some(name) {
                    return Err(format!("`</{name}>` closes nothing open"));
                }
                continue;
            }
            let (tag, empty) = match tag.strip_suffix('/') {
                Some(tag) => (tag, true),
                None => (tag, false),
            };
            let name_end = tag.find(char::is_whitespace).unwrap_or(tag.len());
            let name = &tag[..name_end];
            if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '-' || c == ':') {
                return Err(format!("bad element name {name:?}"));
            }
            // Attributes: name="value" pairs, each value free of `<` and `"`.
            let mut attrs = tag[name_end..].trim();
            let mut seen = Vec::new();
            while !attrs.is_empty() {
                let eq = attrs.find("=\"").ok_or(format!("bad attribute in <{name}>"))?;
                let attr = attrs[..eq].trim();
                if attr.is_empty() || seen.contains(&attr) {
                    return Err(format!("empty or repeated attribute in <{name}>"));
                }
                seen.push(attr);
                let value_end = attrs[eq + 2..].find('"').ok_or("unclosed attribute value")?;
                let value = &attrs[eq + 2..eq + 2 + value_end];
                if value.contains('<') {
                    return Err("`<` in an attribute".into());
                }
                check_text(value)?;
                attrs = attrs[eq + 2 + value_end + 1..].trim_start();
            }
            if open.is_empty() {
                roots += 1;
            }
            names.push(name.to_string());
            if !empty {
                open.push(name.to_string());
            }
        }
        if !rest.trim().is_empty() {
            return Err("text after the root element".into());
        }
        match (roots, open.last()) {
            (1, None) => Ok(names),
            (_, Some(name)) => Err(format!("<{name}> is not closed")),
            (n, None) => Err(format!("{n} root elements")),
        }
    }

    #[test]
    fn the_xml_check_catches_mistakes() {
        assert!(check_xml(r#"<a x="1"><b/>text &amp; &#39;</a>"#).is_ok());
        for bad in [
            "<a><b></a>",
            "<a>&</a>",
            "<a>&nbsp;</a>",
            r#"<a x="<"/>"#,
            "<a>\u{1b}</a>",
            "<a></a><b></b>",
            "<a>",
            r#"<a x="1" x="2"/>"#,
        ] {
            assert!(check_xml(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn svg_draws_every_node_with_its_numbers() {
        let svg = svg(&small(), 100);
        let names = check_xml(&svg).unwrap_or_else(|e| panic!("{e}\n{svg}"));
        assert_eq!(names.first().map(String::as_str), Some("svg"));
        for text in [">root<", ">a<", ">b<", ">c<", ">d<", ">e<", "n=100 v=+0.10", "n=70 v=+0.57", "n=19 v=-1.00"] {
            assert!(svg.contains(text), "{text} missing");
        }
        assert!(svg.contains("6 nodes, all shown."));
        assert!(svg.contains("Most visited path (orange): a → c"));
        assert!(svg.contains("terminal: the episode is over"));
        // One double border, for the one terminal node.
        assert_eq!(svg.matches(r#"rx="6""#).count(), 1);
        // The best path: three boxes and two edges in orange.
        assert_eq!(svg.matches(&format!(r#"stroke="{BEST}" stroke-width="2.5""#)).count(), 3);
        assert_eq!(svg.matches(&format!(r#"stroke="{BEST}" stroke-width=""#)).count(), 2 + 3);
    }

    #[test]
    fn svg_lays_parents_over_their_children() {
        let t = small();
        let view = View::new(&t, 100);
        let x = layout(&view, 100.0);
        // Leaves c, d, e are one slot apart; a over c and d; b over e; root over a and b.
        let at = |action: &str| view.nodes.iter().position(|s| action == super::action(s)).map(|i| x[i]);
        let (c, d, e) = (at("c").unwrap(), at("d").unwrap(), at("e").unwrap());
        assert_eq!((d - c, e - d), (100.0, 100.0));
        assert_eq!(at("a"), Some((c + d) / 2.0));
        assert_eq!(at("b"), Some(e));
        assert_eq!(at("root"), Some((at("a").unwrap() + e) / 2.0));
    }

    #[test]
    fn pruning_keeps_the_most_visited_with_their_ancestors() {
        let t = small();
        let view = View::new(&t, 4);
        let kept: Vec<String> = view.nodes.iter().map(action).collect();
        assert_eq!(kept, ["root", "a", "c", "b"]);
        assert_eq!(view.left_out(), 2);
        let picture = svg(&small(), 4);
        check_xml(&picture).unwrap();
        assert!(picture.contains("6 nodes: the 4 most visited shown, 2 left out."), "{picture}");
        // a lost d, b lost e.
        assert_eq!(picture.matches("+1 more").count(), 2);
        assert!(!picture.contains(">d<") && !picture.contains(">e<"));

        // A bigger tree where visits shrink down the tree: what is kept is ancestor-closed, as
        // many as asked, and exactly the most visited.
        let mut nodes = vec![(None, "", 10_000, 0.0)];
        let mut seed = 7u64;
        for i in 1..500 {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let parent = (seed >> 33) as usize % i;
            nodes.push((Some(parent), "x", nodes[parent].2 * 9 / 10 - (seed >> 60), 0.0));
        }
        let big = tree(&nodes);
        let view = View::new(&big, 50);
        assert_eq!(view.nodes.len(), 50);
        assert_eq!(view.left_out(), 450);
        for shown in &view.nodes[1..] {
            let parent = &view.nodes[shown.parent.unwrap()];
            assert_eq!(shown.node.parent, Some(parent.index));
        }
        let mut visits: Vec<u64> = big.nodes.iter().map(|n| n.visits).collect();
        visits.sort_unstable_by(|a, b| b.cmp(a));
        let least_kept = view.nodes.iter().map(|s| s.node.visits).min().unwrap();
        assert!(visits[..50].iter().all(|&v| v >= least_kept) && visits[50] <= least_kept);
        check_xml(&svg(&big, 50)).unwrap();
    }

    #[test]
    fn hostile_labels_come_out_escaped() {
        let hostile =
            ["<script>alert(1)</script>", "a & b", "say \"hi\"", "it's", "\u{1b}[2J\u{0}", "]]>", "\u{202e}gnp"];
        let mut nodes = vec![(None, "", 10, 0.0)];
        nodes.extend(hostile.iter().map(|&a| (Some(0), a, 1, 0.0)));
        let t = tree(&nodes);
        for page in [svg(&t, 100), html(&t, 100)] {
            assert!(!page.contains("<script>alert"), "{page}");
            assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
            assert!(page.contains("a &amp; b"));
            assert!(page.contains("say &quot;hi&quot;"));
            assert!(page.contains("it&#39;s"));
            assert!(page.contains(r"\u{1b}[2J\u{0}"));
            assert!(page.contains(r"\u{202e}gnp"));
            assert!(!page.chars().any(|c| c.is_control() && c != '\n'));
        }
        check_xml(&svg(&t, 100)).unwrap();
        // The SVG cuts long labels; the tooltip keeps all of it.
        let svg = svg(&t, 100);
        assert!(svg.contains(">&lt;script&gt;alert(1)&lt;…<"));
    }

    #[test]
    fn html_nests_nodes_sorted_by_visits() {
        let page = html(&small(), 100);
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(!page.contains("http://") && !page.contains("https://") && !page.contains(" src="));
        assert!(page.contains("6 nodes, all shown."));
        // The root is open; nodes with children are collapsible; leaves are plain lines.
        assert!(page.contains(r#"<details class="node best" open><summary><span class="a">root</span> n=100"#));
        assert_eq!(page.matches("<details").count(), 3);
        assert_eq!(page.matches("</details>").count(), 3);
        assert_eq!(page.matches(r#"<div class="leaf"#).count(), 3);
        assert_eq!(page.matches(" open>").count(), 1);
        for text in [
            r#"<span class="a">a</span> n=70 <span class="s">(70%)</span> <span class="v pos">v=+0.57</span> <span class="p">player 0 to move</span>"#,
            r#"<span class="v neg">v=-1.00</span>"#,
            r#"<span class="p">no one to move</span> <span class="t">terminal</span>"#,
        ] {
            assert!(page.contains(text), "{text} missing from\n{page}");
        }
        // Children by visits: d (19) listed after c (50) in the tree; make d the most visited.
        let mut t = small();
        t.nodes[4].visits = 60;
        let page = html(&t, 100);
        let (c, d) = (page.find(r#">c</span>"#).unwrap(), page.find(r#">d</span>"#).unwrap());
        assert!(d < c);
        assert!(page.contains(r#"<div class="leaf best"><span class="a">d</span>"#));
    }

    #[test]
    fn html_says_what_was_left_out() {
        let page = html(&small(), 4);
        assert!(page.contains("6 nodes: the 4 most visited shown, 2 left out."));
        assert_eq!(page.matches("1 less visited child left out").count(), 2);
        assert!(!page.contains(">d</span>") && !page.contains(">e</span>"));
    }

    #[test]
    fn odd_trees_do_not_panic() {
        // Empty, root only, children out of range, a cycle, a shared child, a deep chain.
        let empty = Tree::default();
        assert!(svg(&empty, 10).contains("The tree is empty."));
        assert!(html(&empty, 10).contains("The tree is empty."));
        check_xml(&svg(&empty, 10)).unwrap();
        let one = tree(&[(None, "", 0, f64::NAN)]);
        check_xml(&svg(&one, 0)).unwrap();
        assert!(html(&one, 0).contains("1 node."));
        let mut bad = tree(&[(None, "", 5, 0.0), (Some(0), "a", 3, f64::INFINITY), (Some(0), "b", 2, 0.0)]);
        bad.nodes[1].children = vec![0, 1, 2, 99];
        bad.nodes[2].children = vec![1];
        for max in [0, 1, 2, 100] {
            check_xml(&svg(&bad, max)).unwrap();
            html(&bad, max);
        }
        assert_eq!(View::new(&bad, 100).nodes.len(), 3);
        let chain: Vec<_> = (0..20_000usize).map(|i| (i.checked_sub(1), "x", 20_000 - i as u64, 0.0)).collect();
        let chain = tree(&chain);
        assert!(html(&chain, usize::MAX).contains("20000 nodes, all shown."));
        check_xml(&svg(&chain, 1000)).unwrap();
    }
}
