//! Any bytes as an HTTP request: a head, an error with a status, or "read more", never a panic;
//! a normalised path never holds a dot segment, an empty segment or a control character (the
//! API's authorisation and the file server rely on it); chunked bodies decode the same however
//! they are split across reads, and never past their limit.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rsrs_codec::http::{parse_head, BodyFraming, ChunkedDecoder, Limits};

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_head: 2048, max_headers: 16, max_body: 4096 };
    let Ok(Some(head)) = parse_head(data, &limits) else { return };
    assert!(head.head_len <= limits.max_head);
    let p = &head.path;
    assert!(p == "*" || p.starts_with('/'), "{p:?}");
    assert!(!p.contains("//") && !p.contains("/./") && !p.contains("/../"), "{p:?}");
    assert!(!p.ends_with("/..") && !p.ends_with("/."), "{p:?}");
    assert!(!p.chars().any(char::is_control), "{p:?}");
    if let BodyFraming::Length(n) = head.framing {
        assert!(n <= limits.max_body);
    }
    if head.framing == BodyFraming::Chunked {
        let rest = &data[head.head_len..];
        let mut whole = ChunkedDecoder::new(limits.max_body);
        let whole_result = whole.feed(rest);
        // The same bytes one at a time must give the same answer.
        let mut bytewise = ChunkedDecoder::new(limits.max_body);
        let mut used = 0;
        let mut bytewise_err = None;
        for b in rest {
            if bytewise.is_done() {
                break;
            }
            match bytewise.feed(std::slice::from_ref(b)) {
                Ok(n) => used += n,
                Err(e) => {
                    bytewise_err = Some(e);
                    break;
                }
            }
        }
        match whole_result {
            Ok(n) => {
                assert!(bytewise_err.is_none());
                assert_eq!(n, used);
                assert_eq!(whole.is_done(), bytewise.is_done());
                let (a, b) = (whole.into_body(), bytewise.into_body());
                assert!(a.len() <= limits.max_body);
                assert_eq!(a, b);
            }
            Err(e) => assert_eq!(Some(e), bytewise_err),
        }
    }
});
