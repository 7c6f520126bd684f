//! A world whose ranks are threads of one process: the collectives of an MPI
//! job without MPI, so multi-rank code (the all-reduce, the expert-parallel
//! exchange, a data-parallel step) is tested in the default build and a
//! library user can run several ranks in one process.
//!
//! Every collective is one exchange in which each rank sends one message to
//! each rank. Messages carry the collective's sequence number, so a fast rank
//! already in the next collective never mixes its messages into the current
//! one. A rank that panics or returns early drops its senders: once every
//! other rank has left, a rank's receive fails at once, and in any case after
//! [`Threads::TIMEOUT`], with a transport error instead of a hang.

use std::cell::{Cell, RefCell};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use super::{CommError, Communicator};

/// `(collective number, source rank, payload)`.
type Message = (u64, usize, Vec<u8>);

/// One rank of an in-process world; see [`Threads::world`] and [`Threads::run`].
pub struct Threads {
    rank: usize,
    /// One per rank, `None` for this one (its own message never enters its
    /// inbox, so the inbox disconnects once every other rank has left).
    senders: Vec<Option<Sender<Message>>>,
    inbox: Receiver<Message>,
    sequence: Cell<u64>,
    /// Messages of later collectives that arrived early.
    early: RefCell<Vec<Message>>,
}

impl Threads {
    /// How long a rank waits for a message before it gives up.
    pub const TIMEOUT: Duration = Duration::from_secs(120);

    /// The `size` ranks of a new world, one per thread, in rank order.
    pub fn world(size: usize) -> Vec<Self> {
        let (senders, inboxes): (Vec<_>, Vec<_>) = (0..size).map(|_| mpsc::channel()).unzip();
        inboxes
            .into_iter()
            .enumerate()
            .map(|(rank, inbox)| Self {
                rank,
                senders: (0..size)
                    .map(|to| (to != rank).then(|| senders[to].clone()))
                    .collect(),
                inbox,
                sequence: Cell::new(0),
                early: RefCell::new(Vec::new()),
            })
            .collect()
    }

    /// Runs `body` on every rank of a new world of `size`, each on its own
    /// thread, and returns the results in rank order. A panic on any rank is
    /// re-raised here once every thread has ended.
    pub fn run<T: Send>(size: usize, body: impl Fn(&Self) -> T + Sync) -> Vec<T> {
        let body = &body;
        std::thread::scope(|scope| {
            let handles: Vec<_> = Self::world(size)
                .into_iter()
                .map(|comm| scope.spawn(move || body(&comm)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    }

    /// Sends `send[r]` to rank `r` and returns the message from each rank.
    fn exchange(&self, op: &'static str, send: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>, CommError> {
        let size = self.size();
        CommError::check_per_rank(op, size, send.len())?;
        let seq = self.sequence.get();
        self.sequence.set(seq + 1);
        let lost = |reason: String| CommError::Transport { op, reason };
        let mut received: Vec<Option<Vec<u8>>> = vec![None; size];
        for (to, payload) in send.into_iter().enumerate() {
            match &self.senders[to] {
                None => received[to] = Some(payload),
                Some(sender) => sender
                    .send((seq, self.rank, payload))
                    .map_err(|_| lost(format!("rank {to} has left the world")))?,
            }
        }
        let mut missing = size - 1;
        let mut early = self.early.borrow_mut();
        let mut i = 0;
        while i < early.len() {
            if early[i].0 == seq {
                let (_, source, payload) = early.swap_remove(i);
                received[source] = Some(payload);
                missing -= 1;
            } else {
                i += 1;
            }
        }
        while missing > 0 {
            let (s, source, payload) = self.inbox.recv_timeout(Self::TIMEOUT).map_err(|e| {
                lost(match e {
                    RecvTimeoutError::Timeout => format!("no message for {:?}", Self::TIMEOUT),
                    RecvTimeoutError::Disconnected => "every other rank has left".into(),
                })
            })?;
            if s == seq {
                received[source] = Some(payload);
                missing -= 1;
            } else {
                early.push((s, source, payload));
            }
        }
        Ok(received
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect())
    }
}

fn to_bytes(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn to_values(bytes: &[u8]) -> Vec<f64> {
    bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("8-byte chunk")))
        .collect()
}

impl Communicator for Threads {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.senders.len()
    }

    fn all_to_all_v(&self, send: &[Vec<f64>]) -> Result<Vec<Vec<f64>>, CommError> {
        let send = send.iter().map(|v| to_bytes(v)).collect();
        let received = self.exchange("all-to-all send buffers", send)?;
        Ok(received.iter().map(|b| to_values(b)).collect())
    }

    fn broadcast_bytes(&self, root: usize, bytes: &mut Vec<u8>) -> Result<(), CommError> {
        let size = self.size();
        CommError::check_rank(root, size)?;
        let send = if self.rank == root {
            vec![bytes.clone(); size]
        } else {
            vec![Vec::new(); size]
        };
        *bytes = self.exchange("broadcast", send)?.swap_remove(root);
        Ok(())
    }

    fn gather(&self, root: usize, values: &[f64]) -> Result<Option<Vec<Vec<f64>>>, CommError> {
        let size = self.size();
        CommError::check_rank(root, size)?;
        let mut send = vec![Vec::new(); size];
        send[root] = to_bytes(values);
        let received = self.exchange("gather", send)?;
        Ok((self.rank == root).then(|| received.iter().map(|b| to_values(b)).collect()))
    }

    fn barrier(&self) -> Result<(), CommError> {
        self.exchange("barrier", vec![Vec::new(); self.size()])
            .map(drop)
    }

    /// Every rank is a thread of this process, so ending the job ends the
    /// process.
    fn abort(&self, code: i32, reason: &str) -> ! {
        eprintln!("rank {}: {reason}", self.rank);
        std::process::exit(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collectives_deliver_by_source_rank() {
        let out = Threads::run(3, |comm| {
            let r = comm.rank() as f64;
            let send: Vec<Vec<f64>> = (0..3)
                .map(|to| vec![10.0 * r + to as f64; comm.rank()])
                .collect();
            let all = comm.all_to_all_v(&send).unwrap();
            let mut bytes = if comm.rank() == 1 {
                vec![7, 8, 9]
            } else {
                Vec::new()
            };
            comm.broadcast_bytes(1, &mut bytes).unwrap();
            comm.barrier().unwrap();
            let gathered = comm.gather(2, &[r]).unwrap();
            (all, bytes, gathered)
        });
        for (rank, (all, bytes, gathered)) in out.into_iter().enumerate() {
            for (source, got) in all.iter().enumerate() {
                assert_eq!(got, &vec![10.0 * source as f64 + rank as f64; source]);
            }
            assert_eq!(bytes, vec![7, 8, 9]);
            assert_eq!(
                gathered,
                (rank == 2).then(|| vec![vec![0.0], vec![1.0], vec![2.0]])
            );
        }
    }

    #[test]
    fn the_all_reduce_sums_in_rank_order_on_every_rank() {
        // Values whose sum depends on the order: ((a + b) + c) ≠ (a + (b + c)).
        let parts = [1.0, 1e16, -1e16];
        let out = Threads::run(3, |comm| {
            let mut v = vec![parts[comm.rank()]; 5];
            comm.all_reduce_sum(&mut v).unwrap();
            v
        });
        let expected = (parts[0] + parts[1]) + parts[2];
        assert_ne!(expected, parts[0] + (parts[1] + parts[2]));
        for v in out {
            assert!(v.iter().all(|&x| x.to_bits() == expected.to_bits()));
        }
    }

    #[test]
    fn a_rank_that_leaves_makes_the_others_fail_not_hang() {
        let out = Threads::run(2, |comm| {
            if comm.rank() == 1 {
                return None;
            }
            Some(comm.barrier())
        });
        assert!(matches!(out[0], Some(Err(CommError::Transport { .. }))));
    }
}
