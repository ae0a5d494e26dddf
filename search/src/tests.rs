//! The searches against real environments built from source (`wasmgym-builtin`), and against
//! native references where one exists (the game_of_24 solver, replays from reset).

use std::collections::HashMap;
use std::sync::OnceLock;

use wasmgym::{Action, Env, EnvModule, Runtime};
use wasmgym_abi::wire::RolloutRequest;

use super::*;

fn module(name: &str) -> EnvModule {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    static MODULES: OnceLock<std::sync::Mutex<HashMap<String, EnvModule>>> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| Runtime::new().unwrap());
    let mut modules = MODULES.get_or_init(Default::default).lock().unwrap();
    modules
        .entry(name.to_owned())
        .or_insert_with(|| runtime.load(wasmgym_builtin::find(name).unwrap().bytes).unwrap())
        .clone()
}

fn env(name: &str) -> Env {
    let mut env = module(name).instantiate().unwrap();
    env.reset(Some(0), None).unwrap();
    env
}

fn play(env: &mut Env, moves: &[i64]) {
    for &a in moves {
        env.step(a).unwrap();
    }
}

#[test]
fn mcts_takes_a_win_and_blocks_a_loss_in_tic_tac_toe() {
    for replay in [true, false] {
        // X: 0, 1 (4 and 8 for O): X to move wins with 2.
        let mut game = env("tic_tac_toe");
        play(&mut game, &[0, 4, 1, 8]);
        let before = game.state_hash().unwrap();
        let result = mcts(&mut game, &MctsOptions { simulations: 2000, replay, ..Default::default() }).unwrap();
        assert_eq!(result.action, Action::Discrete(2), "{result:?}");
        assert!(result.value > 0.9, "{result:?}");
        assert_eq!(game.state_hash().unwrap(), before, "the search leaves the game where it was");
        assert_replayed(&result, replay);
        // O must block: X has 0 and 1, O has 4; O to move.
        let mut game = env("tic_tac_toe");
        play(&mut game, &[0, 4, 1]);
        let result = mcts(&mut game, &MctsOptions { simulations: 3000, replay, ..Default::default() }).unwrap();
        assert_eq!(result.action, Action::Discrete(2), "{result:?}");
    }
}

/// A search by replay holds one snapshot (the root) where its tree is shallow; one by snapshots
/// holds one per state taken.
fn assert_replayed(result: &SearchResult, replay: bool) {
    match replay {
        true => assert_eq!(result.snapshots, 1, "{result:?}"),
        false => assert_eq!(result.snapshots, result.states, "{result:?}"),
    }
    assert!(result.states > 1, "{result:?}");
}

#[test]
fn deep_trees_replay_a_bounded_path() {
    // One action and no end: the tree is a chain one node deeper every simulation. Replaying it
    // from the root would cost the square of the simulations; from a snapshot every 16 levels it
    // costs about the same per simulation however deep the chain is.
    let runtime = Runtime::new().unwrap();
    let dirty = runtime.load(wasmgym_builtin::find_test_guest("dirty").unwrap().bytes).unwrap();
    let mut env = dirty.instantiate().unwrap();
    env.reset(Some(0), Some(r#"{"memory_kib": 256, "dirty_pages": 1}"#)).unwrap();
    let mut chain = |simulations, replay_depth| {
        let options = MctsOptions { simulations, max_rollout_steps: 4, replay_depth, ..Default::default() };
        mcts(&mut env, &options).unwrap()
    };
    // The chain is about as deep as the simulations; a node every `replay_depth` levels holds a
    // snapshot (and the root), so no simulation replays more than `replay_depth` steps.
    for (simulations, depth) in [(200, 16), (200, 50), (800, 16)] {
        let result = chain(simulations, depth);
        let expected = simulations / depth;
        assert!(result.snapshots.abs_diff(expected) <= 2, "{simulations} / {depth}: {result:?}");
        assert_eq!(result.children[0].visits, simulations as u64);
    }
}

#[test]
fn mcts_takes_a_win_and_blocks_a_loss_in_connect_four() {
    for replay in [true, false] {
        let options = MctsOptions { simulations: 2000, exploration: 2.0, replay, ..Default::default() };
        // x has three in the bottom row (columns 0-2), o has 0-2 in the second row: x wins at 3.
        let mut game = env("connect_four");
        play(&mut game, &[0, 0, 1, 1, 2, 2]);
        let result = mcts(&mut game, &options).unwrap();
        assert_eq!(result.action, Action::Discrete(3), "{result:?}");
        assert_replayed(&result, replay);
        // x threatens 3 in the bottom row; o (to move) must block at 3.
        let mut game = env("connect_four");
        play(&mut game, &[0, 6, 1, 6, 2]);
        let result = mcts(&mut game, &MctsOptions { simulations: 3000, ..options }).unwrap();
        assert_eq!(result.action, Action::Discrete(3), "{result:?}");
    }
}

#[test]
fn mcts_never_loses_to_a_random_player_in_100_games_of_tic_tac_toe() {
    let module = module("tic_tac_toe");
    let mut rng = wasmgym_abi::rng::Rng::seed_from_u64(99);
    let mut outcomes = [0; 3]; // mcts won, drew, lost
    for game in 0..100u64 {
        let mut env = module.instantiate().unwrap();
        env.reset(Some(game), None).unwrap();
        let mcts_player = (game % 2) as u32;
        let mut returns = [0.0; 2];
        while let Some(player) = env.current_player() {
            let action = if player == mcts_player {
                let options = MctsOptions { simulations: 1000, seed: game, ..Default::default() };
                mcts(&mut env, &options).unwrap().action
            } else {
                let legal = env.legal_actions().unwrap();
                Action::Discrete(legal[(rng.next_u64() % legal.len() as u64) as usize])
            };
            let t = env.step(action).unwrap();
            returns[0] += t.reward(0);
            returns[1] += t.reward(1);
        }
        let mine = returns[mcts_player as usize];
        outcomes[if mine > 0.0 {
            0
        } else if mine == 0.0 {
            1
        } else {
            2
        }] += 1;
    }
    assert_eq!(outcomes[2], 0, "won, drew, lost: {outcomes:?}");
    assert!(outcomes[0] > 80, "won, drew, lost: {outcomes:?}");
}

#[test]
fn the_same_seed_gives_the_same_search_and_trees_do_not_depend_on_threads() {
    for replay in [true, false] {
        same_seed_same_search(replay);
    }
}

fn same_seed_same_search(replay: bool) {
    let options = MctsOptions { simulations: 300, seed: 7, replay, ..Default::default() };
    let mut a = env("connect_four");
    let mut b = env("connect_four");
    let (x, y) = (mcts(&mut a, &options).unwrap(), mcts(&mut b, &options).unwrap());
    assert_eq!((&x.action, &x.children, x.nodes), (&y.action, &y.children, y.nodes));
    assert_eq!(x.children.iter().map(|c| c.visits).sum::<u64>(), 300);
    let other = mcts(&mut a, &MctsOptions { seed: 8, ..options.clone() }).unwrap();
    assert_ne!(other.children, x.children, "another seed, another search");
    // Four trees give the same statistics on one thread or two.
    let four = |threads| MctsOptions { simulations: 800, trees: 4, threads, seed: 3, replay, ..Default::default() };
    let one = mcts(&mut a, &four(1)).unwrap();
    let two = mcts(&mut b, &four(2)).unwrap();
    assert_eq!(one.children, two.children);
    assert_eq!(one.children.iter().map(|c| c.visits).sum::<u64>(), 800);
    assert_ne!(one.children, mcts(&mut a, &four(1).clone_with_trees(1)).unwrap().children);
}

impl MctsOptions {
    fn clone_with_trees(&self, trees: usize) -> MctsOptions {
        MctsOptions { trees, ..self.clone() }
    }
}

#[test]
fn every_search_leaves_the_environment_where_it_was() {
    let mut game = env("tic_tac_toe");
    play(&mut game, &[4]);
    let before = game.state_hash().unwrap();
    let options = MctsOptions { simulations: 200, ..Default::default() };
    mcts(&mut game, &options).unwrap();
    assert_eq!(game.state_hash().unwrap(), before, "mcts");
    puct(&mut game, &mut RolloutEvaluator, &options).unwrap();
    assert_eq!(game.state_hash().unwrap(), before, "puct");
    mcts(&mut game, &MctsOptions { trees: 2, threads: 2, count_distinct: true, ..options.clone() }).unwrap();
    assert_eq!(game.state_hash().unwrap(), before, "parallel mcts");
    mcts(&mut game, &MctsOptions { replay: false, ..options }).unwrap();
    assert_eq!(game.state_hash().unwrap(), before, "mcts by snapshots");
    bfs(&mut game, None, None, &BeamOptions { depth: 3, ..Default::default() }).unwrap();
    assert_eq!(game.state_hash().unwrap(), before, "bfs");
    beam(&mut game, None, None, &BeamOptions::default()).unwrap();
    assert_eq!(game.state_hash().unwrap(), before, "beam");
    solve(&mut game, KeyKind::Env, 1_000_000).unwrap();
    assert_eq!(game.state_hash().unwrap(), before, "solve");
    expand(&mut game, &[Action::Discrete(0), Action::Discrete(1)], 2).unwrap();
    assert_eq!(game.state_hash().unwrap(), before, "expand");
}

#[test]
fn a_finished_or_unstarted_episode_is_refused() {
    let mut fresh = module("tic_tac_toe").instantiate().unwrap();
    assert!(matches!(mcts(&mut fresh, &MctsOptions::default()), Err(SearchError::NoDecision(_))));
    let mut game = env("tic_tac_toe");
    play(&mut game, &[0, 3, 1, 4, 2]);
    let e = mcts(&mut game, &MctsOptions::default()).unwrap_err();
    assert!(e.to_string().contains("reset"), "{e}");
    assert!(matches!(bfs(&mut game, None, None, &BeamOptions::default()), Err(SearchError::NoDecision(_))));
}

#[test]
fn exhaustive_search_of_tic_tac_toe_finds_5478_states_and_a_draw() {
    let mut game = env("tic_tac_toe");
    let solution = solve(&mut game, KeyKind::Env, 10_000_000).unwrap();
    assert_eq!(solution.distinct_states, 5478);
    assert_eq!(solution.values, vec![0.0, 0.0]);
    // The machine hash never merges two states wrongly, but merges fewer: more "states".
    let machine = solve(&mut game, KeyKind::Machine, 10_000_000).unwrap();
    assert_eq!(machine.values, vec![0.0, 0.0]);
    assert!(machine.distinct_states > 5478, "{}", machine.distinct_states);
    // A won position: X to move wins.
    play(&mut game, &[0, 4, 1, 8]);
    let won = solve(&mut game, KeyKind::Env, 10_000_000).unwrap();
    assert_eq!((won.values[0], won.action.clone()), (1.0, Action::Discrete(2)));
}

#[test]
fn the_in_guest_rollout_plays_the_same_game_as_one_driven_from_the_host() {
    for name in ["tic_tac_toe", "connect_four", "game_of_24", "text_adventure"] {
        for seed in 0..20 {
            let mut guest = env(name);
            let mut host = env(name);
            let request = RolloutRequest { first: None, seed, max_steps: 1000 };
            let by_guest = guest.rollout(&request).unwrap().expect("the SDK exports wasmgym_rollout");
            let by_host = mcts::host_rollout(&mut host, None, seed, 1000, by_guest.returns.len()).unwrap();
            assert_eq!(
                (by_guest.after_first, &by_guest.returns),
                (by_host.after_first, &by_host.returns),
                "{name} seed {seed}"
            );
            assert_eq!(guest.observe().unwrap(), host.observe().unwrap(), "{name} seed {seed}: the final states");
            assert_eq!(guest.steps(), host.steps(), "{name} seed {seed}");
            assert_eq!(guest.is_running(), host.is_running(), "{name} seed {seed}");
        }
    }
}

#[test]
fn a_rollout_whose_first_action_is_refused_changes_nothing() {
    let mut game = env("tic_tac_toe");
    play(&mut game, &[4]);
    let before = (game.state_key().unwrap(), game.steps(), game.observe().unwrap());
    let request = RolloutRequest { first: Some(Action::Discrete(4)), seed: 1, max_steps: 100 };
    assert!(matches!(game.rollout(&request), Err(wasmgym::Error::IllegalAction { .. })));
    assert_eq!((game.state_key().unwrap(), game.steps(), game.observe().unwrap()), before);
    assert!(!game.is_poisoned());
    // A text environment's first action goes through `step`, refused the same way.
    let mut puzzle = env("game_of_24");
    let before = (puzzle.state_key().unwrap(), puzzle.steps());
    let request = RolloutRequest { first: Some(Action::Text("99 * 99".into())), seed: 1, max_steps: 100 };
    assert!(matches!(puzzle.rollout(&request), Err(wasmgym::Error::IllegalAction { .. })));
    assert_eq!((puzzle.state_key().unwrap(), puzzle.steps()), before);
}

#[test]
fn stochastic_environments_get_chance_nodes_and_no_rollout_export_falls_back_to_the_host() {
    // The bandit (hand-written WAT, stochastic, no rollout export): arms pay with different odds.
    let mut bandit = env("bandit");
    assert!(!bandit.has_rollout());
    let options = MctsOptions { simulations: 3000, seed: 1, ..Default::default() };
    let a = mcts(&mut bandit, &options).unwrap();
    let b = mcts(&mut bandit, &options).unwrap();
    assert_eq!(a.children, b.children, "chance outcomes are sampled from the search's seed");
    assert_eq!(a.action, Action::Discrete(1), "arm 1 pays more often: {a:?}");
    assert!(a.children[1].mean_value > a.children[0].mean_value, "{a:?}");
    assert!(a.nodes > 3000 / 20, "{a:?}");
}

#[test]
fn puct_uses_the_evaluators_priors_and_values_in_batches() {
    let mut game = env("tic_tac_toe");
    play(&mut game, &[0, 4, 1, 8]); // X to move: 2 wins
    let mut batches = Vec::new();
    // A prior that puts almost all weight on cell 5 (a poor move) and no value: rollouts decide.
    let mut evaluator = |leaves: &[Leaf]| {
        batches.push(leaves.len());
        leaves
            .iter()
            .map(|leaf| {
                let priors = leaf.actions.iter().map(|a| if *a == Action::Discrete(5) { 10.0 } else { 1.0 }).collect();
                Evaluation { priors: Some(priors), value: None }
            })
            .collect()
    };
    let options = MctsOptions { simulations: 400, exploration: 1.5, batch_size: 8, ..Default::default() };
    let result = puct(&mut game, &mut evaluator, &options).unwrap();
    assert_eq!(result.action, Action::Discrete(2), "rollouts overrule a bad prior: {result:?}");
    assert!(batches.iter().all(|&n| (1..=8).contains(&n)), "{batches:?}");
    assert!(batches.iter().any(|&n| n > 1), "leaves are evaluated together: {batches:?}");
    let prior_of_5 = result.children.iter().find(|c| c.action == Action::Discrete(5)).unwrap().prior;
    assert!((prior_of_5 - 10.0 / 14.0).abs() < 1e-9, "{prior_of_5}");

    // Values from the evaluator alone: a value that says "the player to move loses" everywhere
    // but at terminal states still finds the win.
    let mut pessimist = |leaves: &[Leaf]| vec![Evaluation { priors: None, value: Some(-0.5) }; leaves.len()];
    let result = puct(&mut game, &mut pessimist, &options).unwrap();
    assert_eq!(result.action, Action::Discrete(2));

    // A wrong answer is an error naming the problem, never a guess.
    let mut broken = |_: &[Leaf]| Vec::new();
    let e = puct(&mut game, &mut broken, &options).unwrap_err();
    assert!(matches!(e, SearchError::Evaluator(_)), "{e}");
    let mut nan = |leaves: &[Leaf]| vec![Evaluation { priors: None, value: Some(f64::NAN) }; leaves.len()];
    assert!(matches!(puct(&mut game, &mut nan, &options), Err(SearchError::Evaluator(_))));
}

#[test]
fn dirichlet_noise_and_temperature_are_seeded() {
    let mut game = env("connect_four");
    let options = MctsOptions {
        simulations: 200,
        dirichlet: Some(Dirichlet { alpha: 0.3, fraction: 0.25 }),
        temperature: 1.0,
        seed: 5,
        ..Default::default()
    };
    let a = puct(&mut game, &mut RolloutEvaluator, &options).unwrap();
    let b = puct(&mut game, &mut RolloutEvaluator, &options).unwrap();
    assert_eq!(a, SearchResult { seconds: a.seconds, ..b.clone() });
    let priors: f64 = a.children.iter().map(|c| c.prior).sum();
    assert!((priors - 1.0).abs() < 1e-9, "{priors}");
    assert!(a.children.iter().any(|c| (c.prior - 1.0 / 7.0).abs() > 1e-3), "noise moved the priors");
    // At temperature 1 the pick follows the visits: over many seeds, not always the most visited.
    let picks: std::collections::HashSet<String> = (0..30)
        .map(|seed| {
            let r = mcts(&mut game, &MctsOptions { simulations: 50, temperature: 1.0, seed, ..Default::default() });
            r.unwrap().action.to_string()
        })
        .collect();
    assert!(picks.len() > 1, "{picks:?}");
}

#[test]
fn breadth_first_search_solves_every_solvable_game_of_24_and_reports_the_rest() {
    let module = module("game_of_24");
    let (mut solvable, mut unsolvable) = (0, 0);
    for seed in 0..40 {
        let mut env = module.instantiate().unwrap();
        env.reset(Some(seed), None).unwrap();
        let numbers: Vec<i64> = numbers_of(&mut env).iter().map(|&n| n as i64).collect();
        let result = bfs(&mut env, None, None, &BeamOptions { depth: 3, ..Default::default() }).unwrap();
        assert!(result.complete, "seed {seed}");
        match game_of_24::solve(&numbers) {
            Some(_) => {
                let solution = result.solution().unwrap_or_else(|| panic!("{numbers:?} is solvable: {result:?}"));
                assert_eq!(solution.return_, 1.0);
                // Replaying the solution from reset reaches 24.
                env.reset(Some(seed), None).unwrap();
                let rewards: f64 = solution.actions.iter().map(|a| env.step(a.clone()).unwrap().reward(0)).sum();
                assert_eq!(rewards, 1.0, "{numbers:?}: {solution:?}");
                solvable += 1;
            }
            None => {
                assert!(result.solution().is_none(), "{numbers:?} has no solution, yet: {result:?}");
                unsolvable += 1;
            }
        }
        assert!(result.merged > 0, "different orders reach the same numbers");
    }
    assert!(solvable > 0 && unsolvable > 0, "{solvable} solvable, {unsolvable} not");
}

/// The numbers left in a game of 24 (fractions as `a/b`).
fn numbers_of(env: &mut Env) -> Vec<f64> {
    let Some(wasmgym::Observation::Text(text)) = env.observe().unwrap() else { panic!("text observation") };
    let number = |n: &str| match n.split_once('/') {
        Some((a, b)) => a.parse::<f64>().unwrap() / b.parse::<f64>().unwrap(),
        None => n.parse().unwrap(),
    };
    text.split_whitespace().map(number).collect()
}

#[test]
fn beam_search_keeps_the_best_states_and_a_custom_proposer_and_evaluator_steer_it() {
    let module = module("game_of_24");
    let mut env = module.instantiate().unwrap();
    env.reset(None, Some(r#"{"numbers": [4, 6, 1, 1]}"#)).unwrap();
    // An evaluator that prefers states whose numbers are close to 24 finds it in a narrow beam.
    let mut closeness = |env: &mut Env, states: &[Scored]| -> Result<Vec<f64>, SearchError> {
        states
            .iter()
            .map(|s| {
                env.restore(&s.snapshot)?;
                let numbers = numbers_of(env);
                let best = numbers.iter().map(|n| -(n - 24.0).abs()).fold(f64::NEG_INFINITY, f64::max);
                Ok(s.return_so_far * 100.0 + best)
            })
            .collect()
    };
    let options = BeamOptions { width: 3, depth: 3, keep_tree: true, ..Default::default() };
    let result = beam(&mut env, None, Some(&mut closeness), &options).unwrap();
    assert!(result.solution().is_some(), "{result:?}");
    assert!(!result.complete);
    let tree = result.tree.unwrap();
    assert!(tree.nodes.len() > 1 && tree.nodes[0].children.len() > 1);
    // A proposer that only multiplies cannot reach 24 from 1 1 1 1... nor anything else: none.
    let mut env = module.instantiate().unwrap();
    env.reset(None, Some(r#"{"numbers": [1, 1, 1, 1]}"#)).unwrap();
    let mut only_times = |env: &mut Env| -> Result<Vec<Action>, SearchError> {
        let all = env.actions()?;
        Ok(all.into_iter().filter(|a| matches!(a, Action::Text(t) if t.contains('*'))).collect())
    };
    let result = bfs(&mut env, Some(&mut only_times), None, &BeamOptions { depth: 3, ..Default::default() }).unwrap();
    assert!(result.solution().is_none() && result.complete);
    assert!(result.trajectories.iter().all(|t| t.actions.iter().all(|a| a.to_string().contains('*'))));
    // Proposals the environment refuses are counted, not fatal.
    let mut nonsense = |_: &mut Env| Ok(vec![Action::Text("7 * 7".into()), Action::Text("1 + 1".into())]);
    let result = bfs(&mut env, Some(&mut nonsense), None, &BeamOptions { depth: 1, ..Default::default() }).unwrap();
    assert_eq!((result.refused, result.nodes), (1, 1));
}

#[test]
fn the_text_adventure_is_won_by_search() {
    let mut game = env("text_adventure");
    let result = bfs(&mut game, None, None, &BeamOptions { depth: 14, ..Default::default() }).unwrap();
    let solution = result.solution().unwrap_or_else(|| panic!("{result:?}"));
    assert!(solution.return_ >= 1.0, "{solution:?}");
    assert!(result.merged > 0, "moving back and forth reaches the same state");
    let mcts_result = mcts(&mut game, &MctsOptions { simulations: 300, max_rollout_steps: 50, ..Default::default() });
    assert!(matches!(mcts_result.unwrap().action, Action::Text(_)));
}

#[test]
fn process_rewards_from_a_sandboxed_checker_score_every_state() {
    // answer_env asks an addition and takes the answer as text; answer_checker (a sandboxed
    // module) scores the answer in a fork of each state: 1 if right, else the share of digits.
    let runtime = Runtime::new().unwrap();
    let env_module = runtime.load(wasmgym_builtin::find_program("answer_env").unwrap().bytes).unwrap();
    let checker_module = runtime.load_checker(wasmgym_builtin::find_program("answer_checker").unwrap().bytes).unwrap();
    let checker = checker_module.instantiate(wasmgym::Limits::default()).unwrap();
    let mut env = env_module.instantiate().unwrap();
    env.reset(Some(0), None).unwrap();
    let render = env.render().unwrap();
    let question = render.split(';').find_map(|kv| kv.strip_prefix("question=")).unwrap();
    let sum: u32 = question.split('+').map(|n| n.parse::<u32>().unwrap()).sum();
    let before = env.state_hash().unwrap();
    let candidates = [(sum + 1).to_string(), sum.to_string(), "7".to_string()];
    let mut propose = |_: &mut Env| Ok(candidates.iter().map(|c| Action::Text(c.clone())).collect());
    let mut evaluator = CheckerEvaluator::new(checker, "", "");
    let options = BeamOptions { width: 2, depth: 1, results: 3, ..Default::default() };
    let result = beam(&mut env, Some(&mut propose), Some(&mut evaluator), &options).unwrap();
    let best = &result.trajectories[0];
    assert_eq!(best.actions, vec![Action::Text(sum.to_string())], "{result:?}");
    assert_eq!(best.score, 1.0, "{result:?}");
    assert!(result.trajectories[1..].iter().all(|t| t.score < 1.0), "{result:?}");
    assert_eq!(env.state_hash().unwrap(), before, "the checker scored forks, not the search's state");
}

#[test]
fn expand_and_vec_env_step_in_parallel_and_agree_with_sequential_steps() {
    let mut game = env("connect_four");
    play(&mut game, &[3, 3]);
    let actions: Vec<Action> = game.actions().unwrap();
    let children = expand(&mut game, &actions, 2).unwrap();
    for child in children {
        let mut reference = game.fork().unwrap();
        let expected = reference.step(child.action.clone()).unwrap();
        assert_eq!(child.outcome.unwrap(), expected);
    }
    let refused = expand(&mut game, &[Action::Discrete(9)], 1).unwrap();
    assert!(matches!(refused[0].outcome, Err(wasmgym::Error::IllegalAction { .. })));

    let module = module("connect_four");
    let mut vector = VecEnv::new(&module, 6, 10, 2, true).unwrap();
    let mut sequential: Vec<Env> = (0..6)
        .map(|i| {
            let mut e = module.instantiate().unwrap();
            e.reset(Some(10 + i), None).unwrap();
            e
        })
        .collect();
    let mut resets = 0;
    for step in 0..60 {
        let actions: Vec<Action> = (0..6).map(|i| Action::Discrete(((step * 3 + i * 5) % 7) as i64)).collect();
        // Columns may be full: fall back to the first legal action for both.
        let actions: Vec<Action> = actions
            .into_iter()
            .zip(vector.envs())
            .map(|(a, e)| if e.actions().unwrap().contains(&a) { a } else { e.actions().unwrap()[0].clone() })
            .collect();
        let steps = vector.step(&actions).unwrap();
        for ((s, e), a) in steps.iter().zip(&mut sequential).zip(&actions) {
            let t = e.step(a.clone()).unwrap();
            assert_eq!(s.transition, t);
            if t.done() {
                resets += 1;
                assert_eq!(s.reset.as_ref().unwrap(), &e.reset(None, None).unwrap());
            }
        }
    }
    assert!(resets > 0, "episodes ended and were reset");
    assert!(matches!(vector.step(&[Action::Discrete(0)]), Err(SearchError::NoDecision(_))));
}

#[test]
fn self_play_records_sum_to_one_over_legal_actions_and_replay_to_their_outcomes() {
    let module = module("tic_tac_toe");
    let options = SelfPlayOptions {
        games: 4,
        mcts: MctsOptions { simulations: 100, ..Default::default() },
        temperature_moves: 2,
        seed: 3,
        ..Default::default()
    };
    let mut games = Vec::new();
    selfplay(&module, &options, |records| {
        games.push(records);
        Ok(())
    })
    .unwrap();
    assert_eq!(games.len(), 4);
    for records in &games {
        for r in records {
            let total: f64 = r.policy.iter().sum();
            assert!((total - 1.0).abs() < 1e-9, "{r:?}");
            assert!(r.policy.iter().zip(&r.legal_mask).all(|(&p, &legal)| legal || p == 0.0), "{r:?}");
            assert!(r.legal_mask[r.action as usize]);
        }
        // Replaying the actions from reset(seed) gives every record's outcome.
        let mut env = module.instantiate().unwrap();
        env.reset(Some(records[0].seed), None).unwrap();
        let mut rewards = Vec::new();
        for r in records {
            let t = env.step(r.action).unwrap();
            rewards.push([t.reward(0), t.reward(1)]);
        }
        assert!(!env.is_running(), "games are played to the end");
        for (i, r) in records.iter().enumerate() {
            let outcome: f64 = rewards[i..].iter().map(|x| x[r.player as usize]).sum();
            assert_eq!(r.outcome, outcome);
        }
    }
    // The same seed writes the same records.
    let mut again = Vec::new();
    selfplay(&module, &options, |records| {
        again.push(records);
        Ok(())
    })
    .unwrap();
    assert_eq!(again, games);
}

#[test]
fn mcts_with_transpositions_holds_each_state_once_and_still_plays_well() {
    for replay in [true, false] {
        transpositions_merge(replay);
    }
}

fn transpositions_merge(replay: bool) {
    let options =
        MctsOptions { simulations: 3000, transpositions: true, count_distinct: true, replay, ..Default::default() };
    let mut game = env("tic_tac_toe");
    play(&mut game, &[0, 4, 1]); // O must block at 2
    let before = game.state_hash().unwrap();
    let merged = mcts(&mut game, &options).unwrap();
    assert_eq!(merged.action, Action::Discrete(2), "{merged:?}");
    assert_eq!(merged.distinct_states, Some(merged.states), "every state held once: {merged:?}");
    let plain = mcts(&mut game, &MctsOptions { transpositions: false, ..options.clone() }).unwrap();
    assert!(plain.distinct_states.unwrap() < plain.states, "without merging, states repeat: {plain:?}");
    assert_eq!(game.state_hash().unwrap(), before);
    assert_eq!(mcts(&mut game, &options).unwrap().children, merged.children, "deterministic");
    // The text adventure's rooms form cycles: selection stops at a cycle instead of looping.
    let mut adventure = env("text_adventure");
    let options =
        MctsOptions { simulations: 400, max_rollout_steps: 30, transpositions: true, replay, ..Default::default() };
    let result = mcts(&mut adventure, &options).unwrap();
    assert_eq!(result.children.iter().map(|c| c.visits).sum::<u64>(), 400);
}

#[test]
fn solve_survives_cycles_and_endless_games_with_an_answer() {
    // The text adventure's rooms form cycles: solved, and the goal is worth its points.
    let mut adventure = env("text_adventure");
    let solution = solve(&mut adventure, KeyKind::Env, 5_000_000).unwrap();
    assert!(solution.values[0] >= 1.0, "{solution:?}");
    // The dirty guest never ends (one action, no limit): refused at the depth bound, not a crash.
    let runtime = Runtime::new().unwrap();
    let dirty = runtime.load(wasmgym_builtin::find_test_guest("dirty").unwrap().bytes).unwrap();
    let mut endless = dirty.instantiate().unwrap();
    endless.reset(Some(0), None).unwrap();
    let e = solve(&mut endless, KeyKind::Machine, 10_000_000).unwrap_err();
    assert!(e.to_string().contains("deeper than"), "{e}");
    // And a step budget smaller than the game is refused with the budget named.
    let mut game = env("connect_four");
    let e = solve(&mut game, KeyKind::Env, 10_000).unwrap_err();
    assert!(e.to_string().contains("10000"), "{e}");
}
