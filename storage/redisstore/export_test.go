package redisstore

// LocalReadStats returns the counters of s's local reads: answers from
// memory, answers from Redis, and barrier round trips sent. All are zero
// without local reads.
func LocalReadStats(s *Store) (hits, misses, rounds int64) {
	if s.local == nil {
		return 0, 0, 0
	}
	return s.local.hits.Load(), s.local.misses.Load(), s.local.barrier.rounds.Load()
}
