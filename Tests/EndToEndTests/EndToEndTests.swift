// End-to-end tests run the built linprobe binary.
import Testing
