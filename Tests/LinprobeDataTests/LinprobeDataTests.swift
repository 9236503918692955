// Tests of LinprobeData live in this folder.
import Testing
