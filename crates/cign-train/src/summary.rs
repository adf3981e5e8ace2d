//! `--summary`: the model's variables as a table and the number of trainable parameters.

use tch::nn::VarStore;

/// The table of trainable tensors (name, shape, count), sorted by name, and the total line
/// `parameters: N` (thousands separated by commas).
pub fn model_table(vs: &VarStore) -> String {
    let mut vars: Vec<(String, tch::Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let width = vars.iter().map(|(n, _)| n.len()).max().unwrap_or(4);
    let mut out = format!(
        "{:<width$}  {:<18}  {:>12}\n",
        "tensor", "shape", "parameters"
    );
    let mut total = 0i64;
    for (name, t) in &vars {
        let n = t.numel() as i64;
        total += n;
        out.push_str(&format!(
            "{name:<width$}  {:<18}  {:>12}\n",
            format!("{:?}", t.size()),
            with_commas(n)
        ));
    }
    out.push_str(&format!("parameters: {}\n", with_commas(total)));
    out
}

/// `5607110` as `5,607,110`.
pub fn with_commas(n: i64) -> String {
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}
