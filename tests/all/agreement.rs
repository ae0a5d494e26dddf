//! The built-in games agree with their reference implementations, through the sandbox: OpenSpiel
//! 2.0.2 (tic-tac-toe, connect-four: 1000 random games each) and Gymnasium 1.4.0 (CartPole-v1,
//! bit for bit). Fixtures come from `scripts/make_fixtures.py`.

use serde_json::Value;
use wasmgym::{Env, Observation};
use wasmgym_tests::module;

fn fixture(name: &str) -> Vec<Value> {
    let path = format!("{}/fixtures/{name}.jsonl", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn mask(env: &mut Env) -> u64 {
    env.legal_actions().unwrap().iter().fold(0, |m, &a| m | 1 << a)
}

fn as_f64s(obs: &Observation) -> Vec<f64> {
    match obs {
        Observation::F32(v) => v.iter().map(|&x| x as f64).collect(),
        Observation::F64(v) => v.clone(),
        other => panic!("unexpected observation {other:?}"),
    }
}

/// Replays every OpenSpiel game: legal actions, current player, observation tensors, terminal
/// step and returns must all agree.
fn agrees_with_open_spiel(name: &str) {
    let games = fixture(name);
    assert_eq!(games.len(), 1000, "{name}: expected 1000 games");
    let m = module(name);
    let mut env = m.instantiate().unwrap();
    let start = env.snapshot().unwrap();
    for (g, game) in games.iter().enumerate() {
        env.restore(&start).unwrap();
        let first = env.reset(Some(g as u64), None).unwrap();
        let actions: Vec<i64> = game["actions"].as_array().unwrap().iter().map(|a| a.as_i64().unwrap()).collect();
        let masks = game["legal_masks"].as_array().unwrap();
        let players = game["players"].as_array().unwrap();
        let observations = game.get("observations").and_then(Value::as_array);
        let mut returns = [0.0f64; 2];
        let mut last = first;
        for (i, &action) in actions.iter().enumerate() {
            assert_eq!(mask(&mut env), masks[i].as_u64().unwrap(), "{name} game {g} step {i}: legal actions");
            assert_eq!(
                env.current_player(),
                Some(players[i].as_u64().unwrap() as u32),
                "{name} game {g} step {i}: player"
            );
            if let Some(obs) = observations {
                let want: Vec<f64> = obs[i].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
                assert_eq!(as_f64s(&last.observation), want, "{name} game {g} step {i}: observation");
            }
            assert!(!last.done(), "{name} game {g}: ended before OpenSpiel at step {i}");
            last = env.step(action).unwrap();
            returns[0] += last.reward(0);
            returns[1] += last.reward(1);
        }
        assert!(last.terminated && !last.truncated, "{name} game {g}: OpenSpiel's game is over, ours is not");
        assert_eq!(mask(&mut env), 0, "{name} game {g}: legal actions after the end");
        let want: Vec<f64> = game["returns"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        assert_eq!(returns.to_vec(), want, "{name} game {g}: returns");
        if let Some(obs) = observations {
            let final_obs: Vec<f64> =
                obs[actions.len()].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
            assert_eq!(as_f64s(&last.observation), final_obs, "{name} game {g}: final observation");
        }
    }
}

#[test]
fn tic_tac_toe_agrees_with_open_spiel_on_1000_games() {
    agrees_with_open_spiel("tic_tac_toe");
}

#[test]
fn connect_four_agrees_with_open_spiel_on_1000_games() {
    agrees_with_open_spiel("connect_four");
}

/// Every CartPole episode equals Gymnasium's bit for bit: every state, reward and flag, and the step
/// where it ends. The environment computes `sin`/`cos` as glibc's FMA path does (the values
/// Gymnasium used), in WebAssembly as natively.
#[test]
fn cart_pole_matches_gymnasium_bit_for_bit() {
    let episodes = fixture("cart_pole");
    assert!(episodes.len() >= 100, "expected at least 100 CartPole episodes");
    let bits = |v: &Value| u64::from_str_radix(v.as_str().unwrap(), 16).unwrap();
    let state = |v: &Value| -> Vec<u64> { v.as_array().unwrap().iter().map(bits).collect() };
    let mut env = module("cart_pole").instantiate().unwrap();
    let (mut truncated, mut steps) = (0, 0);
    for (e, ep) in episodes.iter().enumerate() {
        let options = serde_json::json!({ "state_bits": ep["initial_state_bits"] }).to_string();
        let first = env.reset(Some(e as u64), Some(&options)).unwrap();
        let initial = state(&ep["initial_state_bits"]);
        assert_eq!(as_f64s(&first.observation).iter().map(|x| x.to_bits()).collect::<Vec<_>>(), initial);
        for (i, action) in ep["actions"].as_array().unwrap().iter().enumerate() {
            assert!(env.is_running(), "episode {e}: ended before Gymnasium's at step {i}");
            let t = env.step(action.as_i64().unwrap()).unwrap();
            let got: Vec<u64> = as_f64s(&t.observation).iter().map(|x| x.to_bits()).collect();
            assert_eq!(got, state(&ep["state_bits"][i]), "episode {e} step {i}: state");
            assert_eq!(t.reward(0), ep["rewards"][i].as_f64().unwrap(), "episode {e} step {i}: reward");
            assert_eq!(t.terminated, ep["terminated"][i].as_bool().unwrap(), "episode {e} step {i}: terminated");
            assert_eq!(t.truncated, ep["truncated"][i].as_bool().unwrap(), "episode {e} step {i}: truncated");
            truncated += t.truncated as u32;
            steps += 1;
        }
        assert!(!env.is_running(), "episode {e}: Gymnasium's episode ended, ours did not");
    }
    assert!(truncated >= 2, "only {truncated} episodes reached truncation at 500 steps");
    assert!(steps > 3000, "only {steps} steps compared");
}
