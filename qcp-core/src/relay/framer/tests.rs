use super::*;

/// Records what it saw; stops at the tags in `stop_at`; wants bodies for `Z`.
#[derive(Default)]
struct Recorder {
    seen: Vec<(u8, Option<Vec<u8>>)>,
    stop_at: Vec<u8>,
}

impl Inspect for Recorder {
    fn needs_body(&self, tag: Tag) -> usize {
        if tag == Tag::READY_FOR_QUERY {
            WHOLE_BODY
        } else {
            0
        }
    }
    fn message(&mut self, header: Header, body: Option<&[u8]>) -> Verdict {
        if self.stop_at.contains(&header.tag.0) {
            return Verdict::Stop;
        }
        self.seen.push((header.tag.0, body.map(<[u8]>::to_vec)));
        Verdict::Pass
    }
}

fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn framer() -> Framer {
    Framer::new(Limits::default())
}

#[test]
fn one_run_covers_many_whole_messages() {
    let mut stream = msg(b'D', b"row1");
    stream.extend(msg(b'D', b"row2"));
    stream.extend(msg(b'C', b"SELECT 2\0"));
    stream.extend(msg(b'Z', b"I"));
    let mut rec = Recorder::default();
    let run = framer().next_run(&stream, 1024, &mut rec).unwrap();
    assert_eq!(run, Run::Forward(stream.len()));
    let tags: Vec<u8> = rec.seen.iter().map(|(t, _)| *t).collect();
    assert_eq!(tags, b"DDCZ");
    assert_eq!(rec.seen[3].1.as_deref(), Some(&b"I"[..]));
}

#[test]
fn a_body_bigger_than_the_buffer_streams_through() {
    let body = vec![7u8; 100];
    let stream = msg(b'd', &body);
    let mut f = framer();
    let mut rec = Recorder::default();
    // First 30 bytes: header + 25 body bytes.
    assert_eq!(
        f.next_run(&stream[..30], 32, &mut rec).unwrap(),
        Run::Forward(30)
    );
    assert!(!f.at_boundary());
    assert_eq!(
        f.next_run(&stream[30..60], 32, &mut rec).unwrap(),
        Run::Forward(30)
    );
    assert_eq!(
        f.next_run(&stream[60..], 32, &mut rec).unwrap(),
        Run::Forward(stream.len() - 60)
    );
    assert!(f.at_boundary());
    assert_eq!(rec.seen.len(), 1);
}

#[test]
fn a_split_header_waits_for_more() {
    let mut stream = msg(b'C', b"OK\0");
    stream.extend(msg(b'Z', b"I"));
    let mut f = framer();
    let mut rec = Recorder::default();
    let cut = 8 + 3; // first message (8 bytes) plus 3 bytes of the next header
    assert_eq!(
        f.next_run(&stream[..cut], 64, &mut rec).unwrap(),
        Run::Forward(8)
    );
    assert_eq!(
        f.next_run(&stream[8..cut], 64, &mut rec).unwrap(),
        Run::NeedMore
    );
    assert_eq!(
        f.next_run(&stream[8..], 64, &mut rec).unwrap(),
        Run::Forward(6)
    );
}

#[test]
fn an_inspected_body_must_be_complete() {
    let stream = msg(b'Z', b"T");
    let mut rec = Recorder::default();
    let mut f = framer();
    assert_eq!(
        f.next_run(&stream[..5], 64, &mut rec).unwrap(),
        Run::NeedMore
    );
    assert!(rec.seen.is_empty(), "not reported twice");
    assert_eq!(f.next_run(&stream, 64, &mut rec).unwrap(), Run::Forward(6));
    assert_eq!(rec.seen, vec![(b'Z', Some(b"T".to_vec()))]);
}

#[test]
fn an_inspected_body_larger_than_the_buffer_is_reported_with_what_fits() {
    let mut stream = msg(b'Z', &[b'I'; 40]);
    stream.extend(msg(b'S', b""));
    let mut rec = Recorder::default();
    let mut f = framer();
    // A 16-byte buffer holds the header and 11 body bytes.
    assert_eq!(
        f.next_run(&stream[..16], 16, &mut rec).unwrap(),
        Run::Forward(16)
    );
    assert_eq!(rec.seen, vec![(b'Z', Some(vec![b'I'; 11]))]);
    assert_eq!(
        f.next_run(&stream[16..], 16, &mut rec).unwrap(),
        Run::Forward(34)
    );
    assert_eq!(rec.seen.len(), 2);
}

#[test]
fn replace_head_drops_the_head_and_forwards_the_rest() {
    let mut stream = msg(b'B', b"\0s1\0tail");
    stream.extend(msg(b'S', b""));
    let mut rec = Recorder {
        stop_at: vec![b'B'],
        ..Default::default()
    };
    let mut f = framer();
    let Run::Stop(header) = f.next_run(&stream, 64, &mut rec).unwrap() else {
        panic!("expected a stop")
    };
    assert_eq!(f.replace_head(header, 4), 9);
    rec.stop_at.clear();
    // The 4 tail bytes, then the Sync.
    assert_eq!(
        f.next_run(&stream[9..], 64, &mut rec).unwrap(),
        Run::Forward(9)
    );
    assert!(f.at_boundary());
    assert_eq!(rec.seen, vec![(b'S', None)]);
}

#[test]
fn stop_splits_the_run_and_discard_drops_the_message() {
    let mut stream = msg(b'Q', b"SELECT 1\0");
    stream.extend(msg(b'X', b"abc"));
    stream.extend(msg(b'S', b""));
    let mut rec = Recorder {
        stop_at: vec![b'X'],
        ..Default::default()
    };
    let mut f = framer();
    let run = f.next_run(&stream, 64, &mut rec).unwrap();
    assert_eq!(run, Run::Forward(14));
    let rest = &stream[14..];
    let Run::Stop(header) = f.next_run(rest, 64, &mut rec).unwrap() else {
        panic!("expected a stop")
    };
    assert_eq!(header.tag, Tag(b'X'));
    let dropped = f.discard(header);
    assert_eq!(dropped, 5);
    assert_eq!(
        f.next_run(&rest[5..], 64, &mut rec).unwrap(),
        Run::Discard(3)
    );
    rec.stop_at.clear();
    assert_eq!(
        f.next_run(&rest[8..], 64, &mut rec).unwrap(),
        Run::Forward(5)
    );
}

#[test]
fn consume_after_stop_forwards_the_message() {
    let stream = msg(b'Q', b"SELECT 1\0");
    let mut rec = Recorder {
        stop_at: vec![b'Q'],
        ..Default::default()
    };
    let mut f = framer();
    let Run::Stop(header) = f.next_run(&stream, 64, &mut rec).unwrap() else {
        panic!()
    };
    assert_eq!(f.consume(header), 5);
    assert_eq!(
        f.next_run(&stream[5..], 64, &mut rec).unwrap(),
        Run::Forward(9)
    );
    assert!(f.at_boundary());
}

#[test]
fn a_bad_length_is_reported_after_the_good_bytes_before_it() {
    let mut stream = msg(b'S', b"");
    stream.extend([b'Q', 0, 0, 0, 2]);
    let mut f = framer();
    let mut rec = Recorder::default();
    assert_eq!(f.next_run(&stream, 64, &mut rec).unwrap(), Run::Forward(5));
    assert!(matches!(
        f.next_run(&stream[5..], 64, &mut rec),
        Err(FrameError::Header(_))
    ));
}

#[test]
fn an_oversized_message_is_refused_from_its_header() {
    let mut f = Framer::new(Limits {
        message: 100,
        ..Limits::default()
    });
    let stream = [b'Q', 0, 0, 1, 0];
    let mut rec = Recorder::default();
    assert!(matches!(
        f.next_run(&stream, 64, &mut rec),
        Err(FrameError::Header(DecodeError::MessageTooLarge { .. }))
    ));
}
