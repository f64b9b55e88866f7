//! The Verilog templates (`templates/*.tera`, compiled into the binary so rendering works
//! from any directory) in one Tera instance, with the two filters they need to print
//! typed values as Verilog: `bit` (a bool as `0`/`1`) and `slit(w=N)` (a signed integer
//! as an N-bit signed literal). Rendering is a pure function of the context.

use std::collections::HashMap;
use std::sync::LazyLock;

use anyhow::{Context as _, Result};
use serde::Serialize;
use tera::{Context, Tera, Value};

/// (name, text) of every template.
const TEMPLATES: [(&str, &str); 7] = [
    ("mx_cell.v", include_str!("../../templates/mx_cell.v.tera")),
    (
        "mx_array.v",
        include_str!("../../templates/mx_array.v.tera"),
    ),
    (
        "mx_cell_bitserial.v",
        include_str!("../../templates/mx_cell_bitserial.v.tera"),
    ),
    ("ccc_top.v", include_str!("../../templates/ccc_top.v.tera")),
    (
        "ccc_sched.v",
        include_str!("../../templates/ccc_sched.v.tera"),
    ),
    (
        "ccc_wmap.v",
        include_str!("../../templates/ccc_wmap.v.tera"),
    ),
    (
        "ccc_fpga_top.v",
        include_str!("../../templates/ccc_fpga_top.v.tera"),
    ),
];

static TERA: LazyLock<Tera> = LazyLock::new(|| {
    let mut t = Tera::default();
    // No autoescaping: the output is Verilog, not HTML.
    t.autoescape_on(vec![]);
    t.add_raw_templates(TEMPLATES)
        .expect("the templates compiled into ccc parse (tests render every one)");
    t.register_filter("bit", bit);
    t.register_filter("slit", slit);
    t.register_filter("bitvec", bitvec);
    t
});

fn bit(v: &Value, _: &HashMap<String, Value>) -> tera::Result<Value> {
    match v {
        Value::Bool(b) => Ok(Value::from(u8::from(*b))),
        _ => Err(tera::Error::msg(format!("`bit` takes a bool, got {v}"))),
    }
}

/// An array of bools (element 0 the least significant) as binary digits, MSB first.
fn bitvec(v: &Value, _: &HashMap<String, Value>) -> tera::Result<Value> {
    let bits = v
        .as_array()
        .ok_or_else(|| tera::Error::msg(format!("`bitvec` takes an array, got {v}")))?;
    bits.iter()
        .rev()
        .map(|b| match b {
            Value::Bool(true) => Ok('1'),
            Value::Bool(false) => Ok('0'),
            _ => Err(tera::Error::msg(format!("`bitvec` takes bools, got {b}"))),
        })
        .collect::<tera::Result<String>>()
        .map(Value::from)
}

/// `-W'sdN` or `W'sdN`.
fn slit(v: &Value, args: &HashMap<String, Value>) -> tera::Result<Value> {
    let n = v
        .as_i64()
        .ok_or_else(|| tera::Error::msg(format!("`slit` takes an integer, got {v}")))?;
    let w = args
        .get("w")
        .and_then(Value::as_u64)
        .ok_or_else(|| tera::Error::msg("`slit` needs a width: slit(w=N)"))?;
    Ok(Value::from(if n < 0 {
        format!("-{w}'sd{}", n.unsigned_abs())
    } else {
        format!("{w}'sd{n}")
    }))
}

/// Renders template `name` with `data` as its context.
pub fn render(name: &str, data: &impl Serialize) -> Result<String> {
    let ctx = Context::from_serialize(data).with_context(|| format!("context of {name}"))?;
    TERA.render(name, &ctx)
        .map_err(|e| anyhow::anyhow!("rendering template {name}: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_print_verilog_literals() {
        let none = HashMap::new();
        assert_eq!(bit(&Value::Bool(true), &none).unwrap(), Value::from(1));
        assert!(bit(&Value::from(3), &none).is_err());
        let w6 = HashMap::from([("w".to_string(), Value::from(6))]);
        assert_eq!(slit(&Value::from(-3), &w6).unwrap(), "-6'sd3");
        assert_eq!(slit(&Value::from(12), &w6).unwrap(), "6'sd12");
        assert!(slit(&Value::from(1), &none).is_err());
        let v = serde_json::json!([true, false, false, true, true]);
        assert_eq!(bitvec(&v, &none).unwrap(), "11001");
    }
}
