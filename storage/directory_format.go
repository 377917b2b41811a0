package storage

import (
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
)

// A session file (a slot) is a fixed header followed by the payload, the
// bytes the engine gave to Save or Write. The header, little endian:
//
//	bytes  0-3   magic "STWD"
//	byte   4     format version (dirFormatVersion)
//	bytes  5-7   zero
//	bytes  8-15  sequence number: the newer of an ID's two slots has the higher
//	bytes 16-23  expiry, Unix nanoseconds (0: never)
//	bytes 24-27  payload length
//	bytes 28-31  CRC-32C (Castagnoli) of the payload followed by bytes 0-27
//
// The CRC covers the payload first so that a streaming write can hash the
// payload as it goes and fill the header in once the length is known.
const (
	dirMagic         = "STWD"
	dirFormatVersion = 1
	dirHeaderLen     = 32
	dirMaxPayload    = math.MaxUint32
)

// dirCRCTable is the CRC-32C table. It is never modified.
var dirCRCTable = crc32.MakeTable(crc32.Castagnoli)

// dirNameEncoding turns an ID into a file name that is the same on
// case-sensitive and case-insensitive file systems: lowercase base32, no
// padding. A 128-byte ID gives 205 characters, and 207 with the slot
// suffix, under the usual 255-byte limit. It is never modified.
var dirNameEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// errCorrupt is wrapped by the reasons a slot file is not valid.
var errCorrupt = errors.New("corrupt session file")

// dirHeader is the decoded header of a slot file.
type dirHeader struct {
	seq     uint64
	expires int64 // Unix nanoseconds, 0 for never
	length  uint32
	crc     uint32
}

// put writes h into b[:dirHeaderLen], computing the CRC from payloadCRC, the
// CRC-32C of the payload, and storing it in h.crc.
func (h *dirHeader) put(b []byte, payloadCRC uint32) {
	b = b[:dirHeaderLen]
	copy(b, dirMagic)
	b[4] = dirFormatVersion
	b[5], b[6], b[7] = 0, 0, 0
	binary.LittleEndian.PutUint64(b[8:], h.seq)
	binary.LittleEndian.PutUint64(b[16:], uint64(h.expires))
	binary.LittleEndian.PutUint32(b[24:], h.length)
	h.crc = crc32.Update(payloadCRC, dirCRCTable, b[:28])
	binary.LittleEndian.PutUint32(b[28:], h.crc)
}

// parseDirHeader decodes b[:dirHeaderLen]. It checks everything but the
// CRC, which needs the payload.
func parseDirHeader(b []byte) (dirHeader, error) {
	if len(b) < dirHeaderLen {
		return dirHeader{}, fmt.Errorf("%w: %d bytes, shorter than the header", errCorrupt, len(b))
	}
	if string(b[:4]) != dirMagic {
		return dirHeader{}, fmt.Errorf("%w: bad magic %q", errCorrupt, b[:4])
	}
	if b[4] != dirFormatVersion || b[5]|b[6]|b[7] != 0 {
		return dirHeader{}, fmt.Errorf("%w: unknown format version %d", errCorrupt, b[4])
	}
	return dirHeader{
		seq:     binary.LittleEndian.Uint64(b[8:]),
		expires: int64(binary.LittleEndian.Uint64(b[16:])),
		length:  binary.LittleEndian.Uint32(b[24:]),
		crc:     binary.LittleEndian.Uint32(b[28:]),
	}, nil
}

// checkCRC reports whether payloadCRC, the CRC-32C of the payload, and the
// header bytes hb give the CRC stored in the header.
func checkCRC(hb []byte, payloadCRC, want uint32) bool {
	return crc32.Update(payloadCRC, dirCRCTable, hb[:28]) == want
}

// dirHash is the stable hash of an ID that chooses its fan-out directories:
// FNV-1a, then the SplitMix64 finalizer so that every bit is mixed. Files
// are found by it, so it must never change.
func dirHash(id string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

const hexDigits = "0123456789abcdef"

// slotPaths are the paths of one ID, relative to the session directory.
type slotPaths struct {
	top  string    // first-level fan-out directory
	leaf string    // second-level fan-out directory, which holds the slots
	slot [2]string // the two slot files
}

// pathsFor returns the paths of the valid id, whose dirHash is h, relative
// to the session directory: ab/cd/<base32 of id>.0 and .1, where ab and cd
// are the two top bytes of dirHash(id) in hex.
func pathsFor(id string, h uint64) slotPaths {
	b := make([]byte, 0, 6+dirNameEncoding.EncodedLen(len(id))+2)
	b = append(b, hexDigits[h>>60], hexDigits[h>>56&15])
	top := len(b)
	b = append(b, os.PathSeparator, hexDigits[h>>52&15], hexDigits[h>>48&15])
	leaf := len(b)
	b = append(b, os.PathSeparator)
	b = dirNameEncoding.AppendEncode(b, []byte(id))
	b = append(b, '.', '0')
	s0 := string(b)
	b[len(b)-1] = '1'
	return slotPaths{top: s0[:top], leaf: s0[:leaf], slot: [2]string{s0, string(b)}}
}

// fanoutName returns the hex name of a fan-out directory: level 0 for the
// first level, 1 for the second.
func fanoutName(h uint64, level int) string {
	shift := 56 - 8*level
	return string([]byte{hexDigits[h>>(shift+4)&15], hexDigits[h>>shift&15]})
}

// isFanoutName reports whether name is a fan-out directory name: two
// lowercase hex digits.
func isFanoutName(name string) bool {
	isHex := func(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }
	return len(name) == 2 && isHex(name[0]) && isHex(name[1])
}

// parseSlotName returns the ID and slot of a slot file name found in the
// fan-out directories top/sub, and false for any other name: those are
// not the Directory's files and are left alone.
func parseSlotName(top, sub, name string) (id string, slot int, ok bool) {
	n := len(name)
	if n < 3 || name[n-2] != '.' || (name[n-1] != '0' && name[n-1] != '1') {
		return "", 0, false
	}
	base := name[:n-2]
	raw, err := dirNameEncoding.DecodeString(base)
	if err != nil {
		return "", 0, false
	}
	id = string(raw)
	if !ValidID(id) || dirNameEncoding.EncodeToString(raw) != base {
		return "", 0, false // not the canonical name of a valid ID
	}
	h := dirHash(id)
	if fanoutName(h, 0) != top || fanoutName(h, 1) != sub {
		return "", 0, false // misplaced: the Directory would never look here
	}
	return id, int(name[n-1] - '0'), true
}

// slotInfo describes one slot file.
type slotInfo struct {
	exists  bool   // the file is there
	valid   bool   // its header, length and CRC check out
	seq     uint64 // when valid
	expires int64  // when valid
	bad     error  // why an existing file is not valid
}

// live reports whether a valid slot has not expired at now (Unix
// nanoseconds). A value expires after its expiry instant, not at it.
func (s slotInfo) live(now int64) bool {
	return s.expires == 0 || now <= s.expires
}

// readSlot opens and checks the slot file at path in r using the scratch buffer
// buf (at least dirHeaderLen bytes). A missing file gives a zero slotInfo
// and a corrupt one a slotInfo with bad set, both with a nil error; the
// error is for failures to read. With wantPayload, a valid slot's payload
// is returned in a new slice.
//
// With expiredAt non-zero, a file whose header is well formed and says it
// expired before expiredAt is reported valid and expired from the header
// alone, without reading or checking the payload; the caller must only use
// that where the slot is already known to be the current one.
func readSlot(r rootDir, path string, buf []byte, wantPayload bool, expiredAt int64) (slotInfo, []byte, error) {
	f, err := r.open(path, os.O_RDONLY, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return slotInfo{}, nil, nil
		}
		return slotInfo{}, nil, fmt.Errorf("storage: %w", err)
	}
	defer f.Close()

	n, err := io.ReadAtLeast(f, buf, dirHeaderLen)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return slotInfo{exists: true, bad: fmt.Errorf("%w: %d bytes, shorter than the header", errCorrupt, n)}, nil, nil
	}
	if err != nil {
		return slotInfo{}, nil, fmt.Errorf("storage: %w", err)
	}
	hb := buf[:dirHeaderLen]
	h, bad := parseDirHeader(hb)
	if bad != nil {
		return slotInfo{exists: true, bad: bad}, nil, nil
	}
	info := slotInfo{exists: true, valid: true, seq: h.seq, expires: h.expires}
	if expiredAt != 0 && !info.live(expiredAt) {
		return info, nil, nil
	}

	total := dirHeaderLen + int64(h.length)
	if int64(n) < total {
		// Check the announced length against the file before reading
		// or allocating for it: a damaged length could say 4 GiB.
		fi, err := f.Stat()
		if err != nil {
			return slotInfo{}, nil, fmt.Errorf("storage: %w", err)
		}
		if size := fi.Size(); size < total {
			return slotInfo{exists: true, bad: torn(size, total)}, nil, nil
		}
	}
	var payload []byte
	var crc uint32
	switch {
	case int64(n) >= total:
		// The common case: one read got the whole file.
		crc = crc32.Checksum(buf[dirHeaderLen:total], dirCRCTable)
		if wantPayload {
			payload = append([]byte{}, buf[dirHeaderLen:total]...)
		}
	case wantPayload:
		payload = make([]byte, h.length)
		copy(payload, buf[dirHeaderLen:n])
		if m, err := io.ReadFull(f, payload[n-dirHeaderLen:]); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return slotInfo{exists: true, bad: torn(int64(n+m), total)}, nil, nil
			}
			return slotInfo{}, nil, fmt.Errorf("storage: %w", err)
		}
		crc = crc32.Checksum(payload, dirCRCTable)
	default:
		// Check a large payload without keeping it. The header bytes
		// leave buf, which is reused to read.
		var hcopy [dirHeaderLen]byte
		copy(hcopy[:], hb)
		hb = hcopy[:]
		crc = crc32.Checksum(buf[dirHeaderLen:n], dirCRCTable)
		for read := int64(n); read < total; {
			m, err := f.Read(buf[:min(int64(len(buf)), total-read)])
			crc = crc32.Update(crc, dirCRCTable, buf[:m])
			read += int64(m)
			if err == io.EOF && read < total {
				return slotInfo{exists: true, bad: torn(read, total)}, nil, nil
			}
			if err != nil && err != io.EOF {
				return slotInfo{}, nil, fmt.Errorf("storage: %w", err)
			}
		}
	}
	if !checkCRC(hb, crc, h.crc) {
		return slotInfo{exists: true, bad: fmt.Errorf("%w: CRC mismatch", errCorrupt)}, nil, nil
	}
	return info, payload, nil
}

// torn describes a file cut short.
func torn(got, want int64) error {
	return fmt.Errorf("%w: %d bytes, the header announces %d", errCorrupt, got, want)
}

// newest returns the index of the valid slot with the highest sequence
// number, or -1 if neither is valid.
func newest(s *[2]slotInfo) int {
	switch {
	case s[0].valid && s[1].valid:
		if s[1].seq > s[0].seq {
			return 1
		}
		return 0
	case s[0].valid:
		return 0
	case s[1].valid:
		return 1
	}
	return -1
}

// slotWriter streams a payload over a slot file from its start and writes
// the header last, so that a write cut short anywhere never leaves a valid
// header over a partial payload. While nothing has reached the file,
// buf[:dirHeaderLen] is reserved for the header, so a small value costs a
// single write.
type slotWriter struct {
	f       *os.File
	buf     []byte // pending bytes, cap is the buffer size
	flushed bool   // bytes reached the file (a zeroed header first)
	wrote   bool   // a write to the file was attempted
	n       uint64 // payload bytes so far
	crc     uint32 // CRC-32C of the payload so far
	err     error  // the first write error, returned by every later call
}

// errTooLarge is returned for a payload longer than the header can say.
var errTooLarge = errors.New("storage: session value larger than 4 GiB")

func newSlotWriter(f *os.File, buf []byte) slotWriter {
	buf = buf[:dirHeaderLen]
	clear(buf)
	return slotWriter{f: f, buf: buf}
}

// Write implements io.Writer.
func (w *slotWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.n+uint64(len(p)) > dirMaxPayload {
		w.err = errTooLarge
		return 0, w.err
	}
	w.crc = crc32.Update(w.crc, dirCRCTable, p)
	w.n += uint64(len(p))
	if len(w.buf)+len(p) <= cap(w.buf) {
		w.buf = append(w.buf, p...)
		return len(p), nil
	}
	if err := w.flush(); err != nil {
		return 0, err
	}
	if len(p) >= cap(w.buf) {
		w.wrote = true
		if _, err := w.f.Write(p); err != nil {
			w.err = fmt.Errorf("storage: %w", err)
			return 0, w.err
		}
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}

func (w *slotWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	w.flushed, w.wrote = true, true
	if _, err := w.f.Write(w.buf); err != nil {
		w.err = fmt.Errorf("storage: %w", err)
		return w.err
	}
	w.buf = w.buf[:0]
	return nil
}

// finish writes what is pending and then the header.
func (w *slotWriter) finish(seq uint64, expires int64) error {
	if w.err != nil {
		return w.err
	}
	h := dirHeader{seq: seq, expires: expires, length: uint32(w.n)}
	if !w.flushed {
		h.put(w.buf, w.crc)
		return w.flush()
	}
	if err := w.flush(); err != nil {
		return err
	}
	var hb [dirHeaderLen]byte
	h.put(hb[:], w.crc)
	if _, err := w.f.WriteAt(hb[:], 0); err != nil {
		w.err = fmt.Errorf("storage: %w", err)
	}
	return w.err
}
