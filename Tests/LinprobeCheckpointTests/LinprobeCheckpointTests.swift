// Tests of LinprobeCheckpoint live in this folder.
import Testing
