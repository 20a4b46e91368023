// Package logging builds the zap logger every binary passes down; there is no global logger.
package logging

import (
	"fmt"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Options is the logging part of every binary's configuration.
type Options struct {
	Level string `envconfig:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
}

// New returns a JSON logger at level, tagged with the binary's service name.
func New(service, level string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.EncoderConfig.TimeKey = "time"
	cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	cfg.Sampling = nil
	log, err := cfg.Build()
	if err != nil {
		return nil, err
	}
	return log.With(zap.String("service", service)), nil
}

// LogLevel lets start-up code read the level of any configuration that embeds Options.
func (o Options) LogLevel() string { return o.Level }
