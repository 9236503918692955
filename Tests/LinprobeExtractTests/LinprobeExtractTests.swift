// Tests of LinprobeExtract live in this folder.
import Testing
