//! A game's subscribers split into lanes, each a broadcast ring of its own, sent to
//! in an order that turns by one lane every frame. A broadcast ring wakes its
//! receivers in the order they started waiting, which is the order they finished
//! the last frame: on one ring the clients written to first would be first every
//! time, and the same clients would always be last. With lanes, each client's place
//! in the fan-out moves from frame to frame, so no client's own tail latency is the
//! whole fan-out's.
//!
//! Lanes open as viewers come (one per [`LANE_SIZE`] subscribers, at most
//! [`MAX_LANES`]), so a game with few viewers holds one ring.

use tokio::sync::broadcast;

/// Subscribers a lane takes before another opens.
pub const LANE_SIZE: usize = 64;

/// Most lanes a game has.
pub const MAX_LANES: usize = 8;

pub struct Lanes<T> {
    senders: Vec<broadcast::Sender<T>>,
    /// Frames' capacity of each ring: how far a subscriber may fall behind.
    capacity: usize,
    /// The lane sent to first on the next send.
    first: usize,
}

impl<T: Clone> Lanes<T> {
    pub fn new(capacity: usize) -> Self {
        Self {
            senders: vec![broadcast::channel(capacity.max(1)).0],
            capacity: capacity.max(1),
            first: 0,
        }
    }

    /// A receiver in the lane with the fewest subscribers, opening a lane when
    /// every lane is full.
    pub fn subscribe(&mut self) -> broadcast::Receiver<T> {
        let (emptiest, count) = self
            .senders
            .iter()
            .map(broadcast::Sender::receiver_count)
            .enumerate()
            .min_by_key(|&(_, count)| count)
            .expect("there is always a lane");
        if count >= LANE_SIZE && self.senders.len() < MAX_LANES {
            let (sender, receiver) = broadcast::channel(self.capacity);
            self.senders.push(sender);
            return receiver;
        }
        self.senders[emptiest].subscribe()
    }

    /// Sends `value` to every lane, starting one lane further on than last time.
    pub fn send(&mut self, value: T) {
        let n = self.senders.len();
        let first = self.first % n;
        self.first = (first + 1) % n;
        for i in 0..n {
            // A lane whose subscribers all left is fine: nobody to wake.
            let _ = self.senders[(first + i) % n].send(value.clone());
        }
    }

    pub fn subscribers(&self) -> usize {
        self.senders
            .iter()
            .map(broadcast::Sender::receiver_count)
            .sum()
    }

    /// Frames the slowest subscriber has not read yet.
    pub fn queued(&self) -> usize {
        self.senders
            .iter()
            .map(broadcast::Sender::len)
            .max()
            .unwrap_or(0)
    }

    #[cfg(test)]
    fn lanes(&self) -> usize {
        self.senders.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_open_as_subscribers_come_and_stay_even() {
        let mut lanes = Lanes::<u64>::new(16);
        let mut receivers: Vec<_> = (0..LANE_SIZE).map(|_| lanes.subscribe()).collect();
        assert_eq!(lanes.lanes(), 1);
        receivers.push(lanes.subscribe());
        assert_eq!(lanes.lanes(), 2);
        receivers.extend((0..LANE_SIZE * MAX_LANES).map(|_| lanes.subscribe()));
        assert_eq!(lanes.lanes(), MAX_LANES);
        assert_eq!(lanes.subscribers(), receivers.len());
        // Past the last lane, the fewest-first rule keeps them within one.
        let counts: Vec<usize> = lanes
            .senders
            .iter()
            .map(broadcast::Sender::receiver_count)
            .collect();
        let (least, most) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(most - least <= LANE_SIZE, "{counts:?}");
        drop(receivers);
        assert_eq!(lanes.subscribers(), 0);
    }

    #[test]
    fn every_subscriber_gets_every_value_in_order() {
        let mut lanes = Lanes::<u64>::new(16);
        let mut receivers: Vec<_> = (0..200).map(|_| lanes.subscribe()).collect();
        for value in 0..10 {
            lanes.send(value);
        }
        assert_eq!(lanes.queued(), 10);
        for rx in &mut receivers {
            let got: Vec<u64> = (0..10).map(|_| rx.try_recv().unwrap()).collect();
            assert_eq!(got, (0..10).collect::<Vec<_>>());
            assert!(rx.try_recv().is_err());
        }
        assert_eq!(lanes.queued(), 0);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_lane_woken_first_turns_every_frame() {
        // One waiting task per lane, recording the order they run in: on a
        // current-thread runtime, tasks run in the order they were woken.
        let mut lanes = Lanes::<u64>::new(16);
        let receivers: Vec<_> = (0..LANE_SIZE * 3).map(|_| lanes.subscribe()).collect();
        assert_eq!(lanes.lanes(), 3);
        let (order_tx, mut order_rx) = tokio::sync::mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        // Lanes fill one after another here: subscriber i is in lane i / LANE_SIZE.
        for (i, mut rx) in receivers.into_iter().enumerate() {
            if i % LANE_SIZE != 0 {
                continue;
            }
            let order = order_tx.clone();
            tasks.push(tokio::spawn(async move {
                while let Ok(frame) = rx.recv().await {
                    order.send((frame, i / LANE_SIZE)).unwrap();
                }
            }));
        }
        tokio::task::yield_now().await; // every task waits now
        let mut firsts = Vec::new();
        for frame in 0..6 {
            lanes.send(frame);
            tokio::task::yield_now().await;
            let (got_frame, lane) = order_rx.recv().await.unwrap();
            assert_eq!(got_frame, frame);
            firsts.push(lane);
            while let Ok((_, _)) = order_rx.try_recv() {}
        }
        assert_eq!(firsts, [0, 1, 2, 0, 1, 2]);
        drop(lanes);
        for task in tasks {
            task.await.unwrap();
        }
    }
}
