//! A search tree as plain data, for drawing (`wasmgym search --tree`) and for JSON.

use serde::Serialize;

/// The tree a search built, root first. Plain data: every search that keeps a tree can return one.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Tree {
    /// `nodes[0]` is the root; a node's children come after it.
    pub nodes: Vec<TreeNode>,
}

/// One node of a [`Tree`]: a state, and what the search learned of the action that led to it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TreeNode {
    /// The parent's index in [`Tree::nodes`] (`None` for the root).
    pub parent: Option<usize>,
    /// The action that led here from the parent, as text (`None` for the root).
    pub action: Option<String>,
    /// Who moves in this state (`None` when the episode is over here).
    pub player: Option<u32>,
    /// Simulations (MCTS) or evaluations (beam, breadth-first) that went through this node.
    pub visits: u64,
    /// The mean value of those, for the player who chose the action that led here (for the root:
    /// for the player to move).
    pub value: f64,
    /// The episode is over in this state.
    pub terminal: bool,
    /// The children's indices in [`Tree::nodes`], in the order the actions were listed.
    pub children: Vec<usize>,
}
