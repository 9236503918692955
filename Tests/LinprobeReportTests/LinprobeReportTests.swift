// Tests of LinprobeReport live in this folder.
import Testing
