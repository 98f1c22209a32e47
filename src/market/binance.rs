//! Binance spot combined-stream frames (`{"stream":"btcusdt@trade","data":{…}}`), parsed without
//! building a JSON tree: only the fields the bot uses are read, borrowed from the frame.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::model::PriceKey;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedMessage<'a> {
    Trade {
        /// `btcusdt`
        stream_symbol: &'a str,
        id: i64,
        price: PriceKey,
        /// Trade time, epoch ms.
        trade_time_ms: i64,
    },
    BookTicker {
        stream_symbol: &'a str,
        bid: PriceKey,
        ask: PriceKey,
    },
    /// Subscription acknowledgements and streams the bot does not use.
    Ignored,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed frame: {0}")]
pub struct FrameError(pub String);

#[derive(Deserialize)]
struct Combined<'a> {
    #[serde(borrow)]
    stream: Option<&'a str>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Trade<'a> {
    #[serde(rename = "t")]
    id: i64,
    #[serde(rename = "p", borrow)]
    price: &'a str,
    #[serde(rename = "T")]
    time: i64,
}

#[derive(Deserialize)]
struct BookTicker<'a> {
    #[serde(rename = "b", borrow)]
    bid: &'a str,
    #[serde(rename = "a", borrow)]
    ask: &'a str,
}

fn price(text: &str, what: &str) -> Result<PriceKey, FrameError> {
    PriceKey::parse_ascii(text.as_bytes())
        .ok_or_else(|| FrameError(format!("{what} {text:?} is not a price")))
}

/// Parse one text frame of a combined stream.
pub fn parse_frame(text: &str) -> Result<FeedMessage<'_>, FrameError> {
    let frame: Combined<'_> = serde_json::from_str(text).map_err(|e| FrameError(e.to_string()))?;
    let (Some(stream), Some(data)) = (frame.stream, frame.data) else {
        // e.g. {"result":null,"id":1}
        return Ok(FeedMessage::Ignored);
    };
    let Some((symbol, kind)) = stream.split_once('@') else {
        return Err(FrameError(format!("stream {stream:?} has no '@'")));
    };
    match kind {
        "trade" => {
            let t: Trade<'_> =
                serde_json::from_str(data.get()).map_err(|e| FrameError(format!("trade: {e}")))?;
            Ok(FeedMessage::Trade {
                stream_symbol: symbol,
                id: t.id,
                price: price(t.price, "trade price")?,
                trade_time_ms: t.time,
            })
        }
        "bookTicker" => {
            let b: BookTicker<'_> = serde_json::from_str(data.get())
                .map_err(|e| FrameError(format!("bookTicker: {e}")))?;
            Ok(FeedMessage::BookTicker {
                stream_symbol: symbol,
                bid: price(b.bid, "bid")?,
                ask: price(b.ask, "ask")?,
            })
        }
        _ => Ok(FeedMessage::Ignored),
    }
}

/// `wss://host:9443` + symbols → the combined-stream URL for their trades and book tickers.
pub fn combined_stream_url(base: &str, streams: &[String]) -> String {
    let names: Vec<String> = streams
        .iter()
        .flat_map(|s| [format!("{s}@trade"), format!("{s}@bookTicker")])
        .collect();
    format!(
        "{}/stream?streams={}",
        base.trim_end_matches('/'),
        names.join("/")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_real_samples() {
        // Verbatim shapes from the 2023-04-05 capture.
        let t = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1680652800004,"s":"BTCUSDT","t":3071245456,"p":"28165.47000000","q":"0.00814000","b":20323440730,"a":20323442015,"T":1680652800004,"m":true,"M":true}}"#;
        assert_eq!(
            parse_frame(t).unwrap(),
            FeedMessage::Trade {
                stream_symbol: "btcusdt",
                id: 3071245456,
                price: PriceKey::parse_ascii(b"28165.47").unwrap(),
                trade_time_ms: 1680652800004
            }
        );
        let b = r#"{"stream":"btcusdt@bookTicker","data":{"u":36090299876,"s":"BTCUSDT","b":"28165.47000000","B":"7.98680000","a":"28165.48000000","A":"3.26888000"}}"#;
        assert!(matches!(
            parse_frame(b).unwrap(),
            FeedMessage::BookTicker {
                stream_symbol: "btcusdt",
                ..
            }
        ));
        assert_eq!(
            parse_frame(r#"{"result":null,"id":1}"#).unwrap(),
            FeedMessage::Ignored
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            "",
            "not json",
            r#"{"stream":"btcusdt@trade","data":{"p":"abc","T":1,"t":1}}"#,
            r#"{"stream":"btcusdt@trade","data":{"p":"1"}}"#,
            r#"{"stream":"btcusdt","data":{}}"#,
            r#"{"stream":"btcusdt@trade","data":{"p":"1","T":1,"t":1"#,
        ] {
            assert!(parse_frame(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn url() {
        assert_eq!(
            combined_stream_url("wss://stream.binance.com:9443/", &["btcusdt".into()]),
            "wss://stream.binance.com:9443/stream?streams=btcusdt@trade/btcusdt@bookTicker"
        );
    }
}
