//! The Graph's `BigInt` and `Bytes` scalars: strings on the wire.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use protocol::api::subgraph::BigInt as WireBigInt;

/// The Graph's `BigInt`: a decimal string in JSON; input also as an `Int`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BigInt(pub String);

#[Scalar(name = "BigInt")]
impl ScalarType for BigInt {
    fn parse(value: Value) -> InputValueResult<Self> {
        let s = match &value {
            Value::String(s) => s.clone(),
            Value::Number(n) if n.is_u64() => n.to_string(),
            _ => return Err(InputValueError::expected_type(value)),
        };
        let n: WireBigInt = s
            .parse()
            .map_err(|e: protocol::api::subgraph::BigIntError| {
                InputValueError::custom(e.to_string())
            })?;
        Ok(BigInt(n.to_string()))
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}

/// The Graph's `Bytes`: a `0x` hex string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bytes(pub String);

#[Scalar(name = "Bytes")]
impl ScalarType for Bytes {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s)
                if s.starts_with("0x")
                    && s.len() % 2 == 0
                    && s[2..].bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                Ok(Bytes(s.to_ascii_lowercase()))
            }
            _ => Err(InputValueError::custom(format!(
                "invalid Bytes {value}: expected an even-length 0x hex string"
            ))),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}
