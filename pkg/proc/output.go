package proc

import (
	"bytes"
	"io"
	"os"
	"sync"
	"time"
)

// Stream is a writer that several children share, such as a terminal. Each line reaches it
// in one Write, led by its child's prefix, and one Write at a time, so the lines of different
// children never break up or mix. Write errors are dropped: a terminal going away must not
// stop a child, and its log file has every line anyway.
type Stream struct {
	mu sync.Mutex
	w  io.Writer
}

// NewStream returns a Stream that writes to w.
func NewStream(w io.Writer) *Stream { return &Stream{w: w} }

func (s *Stream) writeLine(prefix string, line []byte) {
	b := make([]byte, 0, len(prefix)+len(line)+1)
	b = append(append(append(b, prefix...), line...), '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = s.w.Write(b)
}

// Prefixed returns a writer whose lines reach the stream whole, led by prefix, for output
// that is not a child's, such as the supervisor's own log. A last line without a newline is
// held until one arrives.
func (s *Stream) Prefixed(prefix string) io.Writer {
	return &lineWriter{emit: func(line []byte, _ time.Time) { s.writeLine(prefix, line) }}
}

// maxLine bounds what a lineWriter holds while it waits for a newline: output that never
// ends a line is passed on in pieces of this size rather than kept without limit.
const maxLine = 64 << 10

// lineWriter hands every whole line written to it to emit, without its newline. Lines
// completed by one Write share its time: that is as close as the supervisor can tell when
// they reached it.
type lineWriter struct {
	mu   sync.Mutex
	buf  []byte
	emit func(line []byte, read time.Time)
}

func (w *lineWriter) Write(b []byte) (int, error) {
	read := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	start := 0
	for {
		i := bytes.IndexByte(w.buf[start:], '\n')
		if i < 0 {
			break
		}
		w.emit(w.buf[start:start+i], read)
		start += i + 1
	}
	for len(w.buf)-start >= maxLine {
		w.emit(w.buf[start:start+maxLine], read)
		start += maxLine
	}
	// Keeps only the unfinished line, at the front, so the buffer stays as long as one line.
	w.buf = w.buf[:copy(w.buf, w.buf[start:])]
	return len(b), nil
}

// flush passes on an unfinished last line, once nothing more can complete it.
func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit(w.buf, time.Now())
		w.buf = w.buf[:0]
	}
}

// output is a child's stdout and stderr when something besides its log file reads them.
type output struct {
	file  *os.File
	lines *lineWriter
}

func newOutput(file *os.File, stream *Stream, prefix string, onLine func([]byte, time.Time)) *output {
	return &output{file: file, lines: &lineWriter{emit: func(line []byte, read time.Time) {
		if stream != nil {
			stream.writeLine(prefix, line)
		}
		if onLine != nil {
			onLine(line, read)
		}
	}}}
}

// Write never fails: an error would end the copy from the child's pipe, and the child would
// then fail on its next write. The log file is a record, not a reason to stop a child.
func (o *output) Write(b []byte) (int, error) {
	if o.file != nil {
		_, _ = o.file.Write(b)
	}
	return o.lines.Write(b)
}

func (o *output) flush() { o.lines.flush() }
