// Package tracing holds the tests of the event lifecycle trace across the services and the
// worker: in process with a span recorder, and end to end through a real Jaeger.
package tracing
