// Package storage holds the contract between the Steward engine and the
// places where server-side session values live, and the storages that ship
// with Steward.
//
// # The contract
//
// [Storage] streams values over io.Reader and io.Writer, with an expiry per
// value, as Ktor's SessionStorage does. [BytesStorage] is the simpler
// byte-slice form; [FromBytes] turns one into a Storage, so a custom backend
// is a few dozen lines. The storages here implement BytesStorage and embed
// [Streams] for the methods of Storage; [AsBytes] goes the other way, for a
// storage written against the streams.
//
// The engine runs every storage behind storage actors and never calls it
// twice at once for the same ID, but calls for different IDs are concurrent.
//
// # Storages
//
//   - [Memory] keeps values in process memory with expiry and a size bound.
//   - [Directory] keeps each session in up to two slot files under a
//     directory, crash-safe, with a sweeper for expired files and an OS lock
//     against a second process; [NewCachedDirectory] puts a [Cache] in
//     front of it.
//   - [Cache] keeps recently used values of any storage in memory (60 s).
//   - Package redisstore keeps sessions in Redis for several engine
//     instances, with compare-and-set writes ([Versioned]).
//
// Run package storagetest's conformance suite on a storage of your own.
package storage
