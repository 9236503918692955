/// Images in, tensors out: VISSL's dataset sources (disk_folder, disk_filelist, VOC layout,
/// dataset catalog), NumPy `.npy` reading, and torchvision-on-PIL transforms.
public enum LinprobeData {}
