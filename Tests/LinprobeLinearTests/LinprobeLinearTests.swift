// Tests of LinprobeLinear live in this folder.
import Testing
