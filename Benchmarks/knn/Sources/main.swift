print("bench-knn")
