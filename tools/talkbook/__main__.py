from talkbook.cli import main

main()
